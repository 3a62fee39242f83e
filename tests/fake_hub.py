"""A stand-in for the Hugging Face Hub on 127.0.0.1, for tests that must run without internet.

It answers the requests the real ``huggingface_hub`` client makes, and nothing else:
``HEAD``/``GET /{repo_id}/resolve/{revision}/{filename}`` for downloads (with the
X-Repo-Commit, ETag, X-Linked-Etag and X-Linked-Size headers and the X-Error-Code of a
404), and ``POST /api/repos/create``, ``/api/models/{repo_id}/preupload/{rev}`` and
``/api/models/{repo_id}/commit/{rev}`` and ``/api/validate-yaml`` for uploads. Every request is recorded, so a
test can assert that a call made none.
"""
from __future__ import annotations

import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".pt", ".bin")  # stored with git LFS on the Hub, so their ETag is the sha256


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a blob: the Hub's ETag for files not stored with LFS."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class FakeHub:
    """Repositories (commits of files, branches) served over HTTP; see the module docstring."""

    def __init__(self) -> None:
        self.commits: dict[str, dict[str, dict[str, bytes]]] = {}  # repo_id -> commit -> path -> bytes
        self.branches: dict[str, dict[str, str]] = {}  # repo_id -> branch -> commit
        self.corrupt: set[tuple[str, str]] = set()  # (repo_id, path) served with a flipped byte
        self.private: set[str] = set()  # repos that answer only requests carrying a token
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request received
        self.tokens_seen: list[str | None] = []  # Authorization header of every request
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> "FakeHub":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def commit(self, repo_id: str, files: dict[str, bytes], branch: str = "main") -> str:
        """Add a commit holding exactly ``files`` on ``branch`` of ``repo_id`` (created if new); returns its hash."""
        parent = self.branches.get(repo_id, {}).get(branch, "")
        digest = hashlib.sha1(parent.encode())
        for path in sorted(files):
            digest.update(path.encode() + b"\0" + hashlib.sha256(files[path]).digest())
        commit = digest.hexdigest()
        self.commits.setdefault(repo_id, {})[commit] = dict(files)
        self.branches.setdefault(repo_id, {})[branch] = commit
        return commit

    def commit_folder(self, repo_id: str, folder: Path, branch: str = "main") -> str:
        """Commit every file of ``folder`` (not recursive)."""
        return self.commit(repo_id, {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}, branch)

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        """The files of a branch or commit."""
        return self.commits[repo_id][self.branches[repo_id].get(revision, revision)]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # keep test output clean
                pass

            def _reply(self, status: int, headers: dict[str, str], body: bytes = b"") -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _error(self, status: int, code: str, extra: dict[str, str] | None = None) -> None:
                self._reply(status, {"X-Error-Code": code, "X-Error-Message": code, **(extra or {})}, b"{}")

            def _resolve(self) -> None:
                path = urlsplit(self.path).path
                repo_id, _, rest = path.lstrip("/").partition("/resolve/")
                revision, _, filename = rest.partition("/")
                repo_id, revision, filename = unquote(repo_id), unquote(revision), unquote(filename)
                if repo_id not in hub.commits:
                    return self._error(404, "RepoNotFound")
                if repo_id in hub.private and self.headers.get("Authorization") is None:
                    return self._error(401, "RepoNotFound")  # the Hub does not tell a private repo from a missing one
                commit = hub.branches[repo_id].get(revision, revision)
                if commit not in hub.commits[repo_id]:
                    return self._error(404, "RevisionNotFound")
                files = hub.commits[repo_id][commit]
                if filename not in files:
                    return self._error(404, "EntryNotFound", {"X-Repo-Commit": commit})
                data = files[filename]
                headers = {"X-Repo-Commit": commit, "ETag": f'"{git_blob_sha1(data)}"',
                           "Content-Type": "application/octet-stream"}
                if filename.endswith(LFS_SUFFIXES):
                    headers.update({"X-Linked-Etag": f'"{hashlib.sha256(data).hexdigest()}"',
                                    "X-Linked-Size": str(len(data))})
                if (repo_id, filename) in hub.corrupt:
                    data = bytes([data[0] ^ 0xFF]) + data[1:]  # same size, different content
                self._reply(200, headers, data)

            def _record(self) -> None:
                hub.requests.append((self.command, self.path))
                hub.tokens_seen.append(self.headers.get("Authorization"))

            def do_HEAD(self) -> None:
                self._record()
                self._resolve()

            def do_GET(self) -> None:
                self._record()
                self._resolve()

            def do_POST(self) -> None:
                self._record()
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                path = urlsplit(self.path).path
                if self.headers.get("Authorization") is None:
                    return self._error(401, "Unauthorized")
                if path == "/api/repos/create":
                    payload = json.loads(body)
                    repo_id = f"{payload['organization']}/{payload['name']}" if payload.get("organization") \
                        else payload["name"]
                    hub.commits.setdefault(repo_id, {})
                    hub.branches.setdefault(repo_id, {})
                    return self._reply(200, {"Content-Type": "application/json"},
                                       json.dumps({"url": f"{hub.url}/{repo_id}", "name": repo_id}).encode())
                if path == "/api/validate-yaml":  # the README.md metadata check made before a commit
                    return self._reply(200, {"Content-Type": "application/json"}, b'{"errors": [], "warnings": []}')
                prefix, _, action = path.removeprefix("/api/models/").rpartition("/")
                repo_id, _, kind = prefix.rpartition("/")
                if repo_id not in hub.commits:
                    return self._error(404, "RepoNotFound")
                if kind == "preupload":
                    files = [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                             for f in json.loads(body)["files"]]
                    return self._reply(200, {"Content-Type": "application/json"}, json.dumps({"files": files}).encode())
                if kind == "commit":
                    lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
                    files = dict(hub.files(repo_id, action)) if action in hub.branches[repo_id] else {}
                    for line in lines:
                        if line["key"] == "file":
                            files[line["value"]["path"]] = base64.b64decode(line["value"]["content"])
                    commit = hub.commit(repo_id, files, action)
                    return self._reply(200, {"Content-Type": "application/json"}, json.dumps(
                        {"commitUrl": f"{hub.url}/{repo_id}/commit/{commit}", "commitOid": commit,
                         "pullRequestUrl": None, "success": True}).encode())
                self._error(404, "NotFound")

        return Handler
