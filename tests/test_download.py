"""Downloads against a loopback HTTP server: verification, retries, truncation, extraction, GO filter."""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import io
import json
import os
import pickle
import tarfile
import threading
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from lsftbench.data import download as dl
from lsftbench.data import fetch
from lsftbench.data.h5ad import InputDataError, open_perturb_data

FAST = {"retries": 3, "backoff": 0.01, "timeout": 5.0}


# ------------------------------------------------------------------------------------------ server


@dataclass
class Route:
    """How the server answers one path.

    mode: ``ok``; ``fail`` (``fail_times`` answers 500 first); ``truncate`` (announces
    ``len(body) + extra`` bytes, sends ``body`` and closes); ``drop`` (no Content-Length, sends half
    the body and closes).
    """

    body: bytes
    mode: str = "ok"
    fail_times: int = 0
    extra: int = 100


@dataclass
class Server:
    base: str
    routes: dict[str, Route] = field(default_factory=dict)
    hits: Counter[str] = field(default_factory=Counter)


def _handler(server: Server) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = 5

        def log_message(self, *args: object) -> None:  # keep test output quiet
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server API
            server.hits[self.path] += 1
            route = server.routes.get(self.path)
            if route is None:
                self.send_error(404)
                return
            if route.mode == "fail" and server.hits[self.path] <= route.fail_times:
                self.send_error(500, "injected failure")
                return
            body = route.body
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            if route.mode == "truncate":
                self.send_header("Content-Length", str(len(body) + route.extra))
            elif route.mode == "drop":
                body = body[: len(body) // 2]
            else:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
            self.close_connection = True

    return Handler


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients that give up (timeout test) break the pipe; not a test failure


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    state = Server(base="")
    httpd = _QuietServer(("127.0.0.1", 0), _handler(state))
    state.base = f"http://127.0.0.1:{httpd.server_address[1]}/api/access/datafile/"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _route_key(file_id: int | str) -> str:
    return f"/api/access/datafile/{file_id}"


def serve(server: Server, file_id: int | str, route: Route) -> str:
    server.routes[_route_key(file_id)] = route
    return dl.dataverse_url(file_id, server.base)


def hits(server: Server, file_id: int | str) -> int:
    return server.hits[_route_key(file_id)]


# ------------------------------------------------------------------------------------------ data


def tiny_h5ad(path: Path, conditions: list[str] | None = None) -> Path:
    rng = np.random.default_rng(0)
    conditions = conditions or ["ctrl"] * 4 + ["G1+ctrl"] * 3 + ["G2+ctrl"] * 3
    x = sp.random(len(conditions), 5, density=0.5, random_state=1, format="csr", dtype=np.float32)
    x.data = np.abs(x.data) + rng.random(x.nnz).astype(np.float32)
    adata = ad.AnnData(
        X=x.tocsr(),
        obs=pd.DataFrame({"condition": pd.Categorical(conditions)}, index=[f"c{i}" for i in range(len(conditions))]),
        var=pd.DataFrame({"gene_name": [f"G{i}" for i in range(5)]}, index=[f"ENSG{i}" for i in range(5)]),
    )
    adata.write_h5ad(path)
    return path


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def tar_gz_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def dataset_zip(tmp_path: Path, name: str, conditions: list[str] | None = None) -> bytes:
    h5 = tiny_h5ad(tmp_path / "src.h5ad", conditions).read_bytes()
    return zip_bytes({f"{name}/{dl.H5AD_NAME}": h5, f"{name}/go.csv": b"a,b\n"})


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if ".tmp" in p.name or p.name.startswith("tmp"))


# ----------------------------------------------------------------------------------------- tests


def test_registry_and_url() -> None:
    assert dl.dataverse_url(6154417) == "https://dataverse.harvard.edu/api/access/datafile/6154417"
    assert dl.dataverse_url(1, "http://x/y/") == "http://x/y/1"
    assert dl.GEARS_FILES["adamson"].member == "adamson/perturb_processed.h5ad"
    assert dl.GEARS_FILES["go_essential_all"].size == 60_654_049
    assert set(dl.GEARS_DATASETS) == {"adamson", "replogle_k562_essential", "replogle_rpe1_essential", "norman"}
    norman = dl.GEARS_FILES["norman"]  # GEARS 0.1.2 PertData.load(data_name="norman")
    assert (norman.file_id, norman.filename, norman.member) == (6154020, "norman.zip", "norman/perturb_processed.h5ad")
    assert norman.size is None and norman.sha256 is None  # verified through the lock file


def test_dataset_download_extract_ingest_and_lock(server: Server, tmp_path: Path) -> None:
    payload = dataset_zip(tmp_path, "adamson")
    serve(server, 6154417, Route(payload))
    out = tmp_path / "data"
    lock = tmp_path / "lock.json"
    h5ad = dl.fetch_gears_dataset("adamson", out, base_url=server.base, lock_file=lock, **FAST)
    assert h5ad == out / "adamson" / "perturb_processed.h5ad"
    adata = open_perturb_data(h5ad)
    assert set(adata.obs["condition"].astype(str)) == {"ctrl", "G1+ctrl", "G2+ctrl"}
    adata.file.close()
    assert not (out / "adamson" / "go.csv").exists()  # only the h5ad member is extracted
    recorded = json.loads(lock.read_text())
    assert recorded["adamson.zip"] == sha(payload)
    assert recorded["adamson/perturb_processed.h5ad"] == sha(h5ad.read_bytes())
    assert hits(server, 6154417) == 1

    # Reuse: verified against the lock, no new request.
    assert dl.fetch_gears_dataset("adamson", out, base_url=server.base, lock_file=lock, **FAST) == h5ad
    assert fetch.fetch_file(dl.dataverse_url(6154417, server.base), out / "adamson.zip", None, lock) == out / "adamson.zip"
    assert hits(server, 6154417) == 1

    # Tampered lock: clear error naming the file, cached file left for the user to judge.
    recorded["adamson.zip"] = "0" * 64
    lock.write_text(json.dumps(recorded))
    with pytest.raises(fetch.ChecksumError, match=r"adamson\.zip.*does not match.*lock\.json"):
        fetch.fetch_file(dl.dataverse_url(6154417, server.base), out / "adamson.zip", None, lock)
    recorded["adamson/perturb_processed.h5ad"] = "1" * 64
    lock.write_text(json.dumps(recorded))
    with pytest.raises(fetch.ChecksumError, match=r"perturb_processed\.h5ad.*delete"):
        dl.fetch_gears_dataset("adamson", out, base_url=server.base, lock_file=lock, **FAST)
    assert hits(server, 6154417) == 1
    assert leftovers(out) == [] and leftovers(out / "adamson") == []


def test_norman_download_keeps_its_doubles(server: Server, tmp_path: Path) -> None:
    conditions = ["ctrl"] * 4 + ["G1+ctrl"] * 2 + ["G2+ctrl"] * 2 + ["G1+G2"] * 2 + ["G2+G3"] * 2
    payload = dataset_zip(tmp_path, "norman", conditions)
    serve(server, 6154020, Route(payload))
    out, lock = tmp_path / "data", tmp_path / "lock.json"
    h5ad = dl.fetch_gears_dataset("norman", out, base_url=server.base, lock_file=lock, **FAST)
    assert h5ad == out / "norman" / "perturb_processed.h5ad"
    adata = open_perturb_data(h5ad)
    assert set(adata.obs["condition"].astype(str)) == {"ctrl", "G1+ctrl", "G2+ctrl", "G1+G2", "G2+G3"}
    adata.file.close()
    recorded = json.loads(lock.read_text())
    assert recorded["norman.zip"] == sha(payload)
    assert recorded["norman/perturb_processed.h5ad"] == sha(h5ad.read_bytes())
    assert dl.fetch_gears_dataset("norman", out, base_url=server.base, lock_file=lock, **FAST) == h5ad
    assert hits(server, 6154020) == 1


def test_new_download_must_match_recorded_hash(server: Server, tmp_path: Path) -> None:
    url = serve(server, 1, Route(b"new upstream content"))
    lock = tmp_path / "lock.json"
    lock.write_text(json.dumps({"f.bin": sha(b"old content")}))
    with pytest.raises(fetch.ChecksumError, match=r"127\.0\.0\.1.*/1: sha256 .* does not match"):
        fetch.fetch_file(url, tmp_path / "f.bin", None, lock, **FAST)
    assert not (tmp_path / "f.bin").exists()
    assert hits(server, 1) == 1  # a checksum mismatch is not retried


def test_checksum_mismatch_refused(server: Server, tmp_path: Path) -> None:
    url = serve(server, 2, Route(b"wrong content"))
    dest_dir = tmp_path / "d"
    with pytest.raises(fetch.ChecksumError, match=r"datafile/2: sha256 \w+ does not match the expected checksum"):
        fetch.fetch_file(url, dest_dir / "gene2go_all.pkl", sha(b"right content"), tmp_path / "lock.json", **FAST)
    assert list(dest_dir.iterdir()) == []  # nothing at dest, no temporary files
    assert not (tmp_path / "lock.json").exists()


def test_known_checksum_and_size_ok(server: Server, tmp_path: Path) -> None:
    body = b"x" * 5000
    url = serve(server, 3, Route(body))
    dest = fetch.fetch_file(url, tmp_path / "a.pkl", sha(body), tmp_path / "lock.json", size=5000, **FAST)
    assert dest.read_bytes() == body
    assert not (tmp_path / "lock.json").exists()  # published checksums are not recorded


def test_retry_after_server_errors(server: Server, tmp_path: Path) -> None:
    url = serve(server, 4, Route(b"payload", mode="fail", fail_times=2))
    dest = fetch.fetch_file(url, tmp_path / "p.bin", sha(b"payload"), tmp_path / "lock.json", **FAST)
    assert dest.read_bytes() == b"payload"
    assert hits(server, 4) == 3


def test_retries_exhausted(server: Server, tmp_path: Path) -> None:
    url = serve(server, 5, Route(b"payload", mode="fail", fail_times=10))
    with pytest.raises(fetch.DownloadError, match=r"datafile/5 failed after 2 attempt\(s\).*500"):
        fetch.fetch_file(url, tmp_path / "p.bin", None, tmp_path / "lock.json", retries=1, backoff=0.01, timeout=5)
    assert hits(server, 5) == 2
    assert list(tmp_path.iterdir()) == []


def test_not_found_not_retried(server: Server, tmp_path: Path) -> None:
    url = dl.dataverse_url(999, server.base)
    with pytest.raises(fetch.DownloadError, match=r"datafile/999 failed after 1 attempt.*404"):
        fetch.fetch_file(url, tmp_path / "p.bin", None, tmp_path / "lock.json", **FAST)


def test_truncated_transfer_rejected(server: Server, tmp_path: Path) -> None:
    url = serve(server, 6, Route(b"y" * 4096, mode="truncate", extra=1000))
    with pytest.raises(fetch.DownloadError, match=r"datafile/6 failed after 2 attempt"):
        fetch.fetch_file(url, tmp_path / "t.bin", None, tmp_path / "lock.json", retries=1, backoff=0.01, timeout=5)
    assert hits(server, 6) == 2  # a short transfer is retried
    assert list(tmp_path.iterdir()) == []  # nothing accepted, nothing recorded


def test_dropped_connection_caught_by_registry_size(server: Server, tmp_path: Path) -> None:
    url = serve(server, 7, Route(b"z" * 4096, mode="drop"))
    with pytest.raises(fetch.DownloadError, match=r"truncated or wrong transfer, got 2048 bytes but the registry says 4096"):
        fetch.fetch_file(url, tmp_path / "t.bin", None, tmp_path / "lock.json", size=4096, retries=0, timeout=5)
    assert list(tmp_path.iterdir()) == []


def test_timeout(server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gate = threading.Event()
    url = serve(server, 8, Route(b"late"))
    original = server.routes[_route_key(8)]

    class Slow(dict):  # a route lookup that stalls the handler until the test ends
        def get(self, key, default=None):  # type: ignore[override]
            gate.wait(2)
            return original

    server.routes = Slow(server.routes)
    try:
        with pytest.raises(fetch.DownloadError, match=r"datafile/8 failed after 1 attempt.*[Tt]imed? ?out"):
            fetch.fetch_file(url, tmp_path / "late.bin", None, tmp_path / "lock.json", retries=0, timeout=0.3)
    finally:
        gate.set()
    assert not (tmp_path / "late.bin").exists()


def test_archive_without_h5ad(server: Server, tmp_path: Path) -> None:
    serve(server, 7458694, Route(zip_bytes({"replogle_rpe1_essential/readme.txt": b"hi", "other.csv": b"a"})))
    out = tmp_path / "data"
    with pytest.raises(fetch.DownloadError, match=r"replogle_rpe1_essential\.zip: archive has no "
                       r"'replogle_rpe1_essential/perturb_processed\.h5ad'; it holds: .*readme\.txt.*other\.csv"):
        dl.fetch_gears_dataset("replogle_rpe1_essential", out, base_url=server.base, **FAST)
    assert not (out / "replogle_rpe1_essential" / "perturb_processed.h5ad").exists()
    assert not (out / "replogle_rpe1_essential").exists() and leftovers(out) == []


def test_invalid_h5ad_in_archive_names_member(server: Server, tmp_path: Path) -> None:
    serve(server, 7458695, Route(zip_bytes({"replogle_k562_essential/perturb_processed.h5ad": b"not hdf5"})))
    out = tmp_path / "data"
    with pytest.raises(InputDataError, match=r"replogle_k562_essential\.zip:replogle_k562_essential/perturb_processed"):
        dl.fetch_gears_dataset("replogle_k562_essential", out, base_url=server.base, **FAST)
    assert list((out / "replogle_k562_essential").iterdir()) == []


def test_unknown_dataset() -> None:
    with pytest.raises(KeyError, match=r"unknown GEARS dataset 'dixit' \(known: adamson, .*norman\)"):
        dl.fetch_gears_dataset("dixit", "/nonexistent")


def test_go_resources(server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gene2go = pickle.dumps({"A": {"GO:1"}, "B": {"GO:2"}})
    essential = pickle.dumps(["A", "B"])
    tarball = tar_gz_bytes({"go_essential_all/go_essential_all.csv": b"source,target,importance\nA,B,0.5\n"})
    bodies = {"gene2go_all": gene2go, "essential_all_data_pert_genes": essential, "go_essential_all": tarball}
    registry = dict(dl.GEARS_FILES)
    for key, body in bodies.items():
        entry = registry[key]
        registry[key] = dl.GearsFile(entry.file_id, entry.filename, len(body), sha(body), "resource", entry.member)
        serve(server, entry.file_id, Route(body))
    monkeypatch.setattr(dl, "GEARS_FILES", registry)
    out = tmp_path / "go"
    paths = dl.fetch_go_resources(out, base_url=server.base, **FAST)
    assert paths["gene2go_all"].read_bytes() == gene2go
    assert paths["go_essential_all"] == out / "go_essential_all" / "go_essential_all.csv"
    assert paths["go_essential_all"].read_text().startswith("source,target,importance")
    again = dl.fetch_go_resources(out, base_url=server.base, **FAST)
    assert again == paths
    assert sum(server.hits.values()) == 3


def test_go_filter_conditions(tmp_path: Path) -> None:
    gene2go = tmp_path / "gene2go.pkl"
    essential = tmp_path / "essential.pkl"
    # C has GO terms but is not essential; D is essential without GO terms.
    gene2go.write_bytes(pickle.dumps({"A": {"GO:1"}, "B": {"GO:2"}, "C": {"GO:3"}}))
    essential.write_bytes(pickle.dumps(["A", "B", "D", "E"]))
    conditions = ["ctrl", "A+ctrl", "C+ctrl", "A+B", "A+C", "ctrl+B", "D+ctrl", "A+ctrl", "ctrl", "B+A"]
    kept, dropped = dl.go_filter_conditions(conditions, gene2go, essential)
    assert kept == ["ctrl", "A+ctrl", "A+B", "ctrl+B", "B+A"]
    assert dropped == ["C+ctrl", "A+C", "D+ctrl"]
    # Same answer as GEARS 0.1.2 (PertData.set_pert_genes + utils.filter_pert_in_go).
    filter_pert_in_go = _gears_function("filter_pert_in_go")
    g2g, ess = pickle.loads(gene2go.read_bytes()), pickle.loads(essential.read_bytes())
    pert_names = np.unique(list({g: g2g[g] for g in ess if g in g2g}.keys()))
    assert [c for c in dict.fromkeys(conditions) if filter_pert_in_go(c, pert_names)] == kept


def _gears_function(name: str):  # noqa: ANN202 - returns GEARS's own function object
    """One function from the installed GEARS ``utils.py``, without importing GEARS's GPU stack."""
    spec = importlib.util.find_spec("gears")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("GEARS 0.1.2 (cell-gears) is not installed")
    source = (Path(next(iter(spec.submodule_search_locations))) / "utils.py").read_text()
    node = next(n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef) and n.name == name)
    namespace: dict[str, object] = {"np": np}
    exec(compile(ast.Module(body=[node], type_ignores=[]), "gears/utils.py", "exec"), namespace)  # noqa: S102
    return namespace[name]


def test_go_filter_bad_pickle(tmp_path: Path) -> None:
    bad = tmp_path / "gene2go.pkl"
    bad.write_bytes(pickle.dumps(["not", "a", "dict"]))
    ess = tmp_path / "e.pkl"
    ess.write_bytes(pickle.dumps(["A"]))
    with pytest.raises(InputDataError, match=r"gene2go\.pkl: expected a pickled dict"):
        dl.go_filter_conditions(["ctrl"], bad, ess)


def test_local_override(tmp_path: Path) -> None:
    good = tiny_h5ad(tmp_path / "good.h5ad")
    assert dl.local_override(good) == good
    with pytest.raises(InputDataError, match=r"missing\.h5ad: configured local file does not exist"):
        dl.local_override(tmp_path / "missing.h5ad")
    with pytest.raises(InputDataError, match=r"is not a regular file"):
        dl.local_override(tmp_path)
    broken = tmp_path / "broken.h5ad"
    broken.write_bytes(b"garbage")
    with pytest.raises(InputDataError, match=r"broken\.h5ad: not a readable h5ad"):
        dl.local_override(broken)
    no_ctrl = tmp_path / "noctrl.h5ad"
    ad.AnnData(
        X=sp.csr_matrix(np.ones((2, 2), dtype=np.float32)),
        obs=pd.DataFrame({"condition": ["A+ctrl", "A+ctrl"]}, index=["a", "b"]),
        var=pd.DataFrame({"gene_name": ["A", "B"]}, index=["a", "b"]),
    ).write_h5ad(no_ctrl)
    with pytest.raises(InputDataError, match=r"noctrl\.h5ad: no control cells"):
        dl.local_override(no_ctrl)
    if os.geteuid() != 0:
        unreadable = tmp_path / "locked.pkl"
        unreadable.write_bytes(b"x")
        unreadable.chmod(0)
        with pytest.raises(InputDataError, match=r"locked\.pkl: configured local file is not readable"):
            dl.local_override(unreadable)
