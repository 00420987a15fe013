"""A small Hub-compatible HTTP server for the publish tests, driven by the real huggingface_hub client.

It speaks the parts of the Hub's HTTP API that ``huggingface_hub``'s upload path calls, for dataset
repos, with the responses the client expects (read from huggingface_hub 2.x):

- ``POST /api/repos/create``; ``GET /api/datasets/{repo}[/revision/{rev}]`` (repo info);
- ``GET /api/datasets/{repo}/tree/{rev}[/{path}]`` (paginated by ``Link`` headers, 1000 entries a
  page) and ``POST /api/datasets/{repo}/paths-info/{rev}``;
- ``POST /api/validate-yaml`` (README front matter);
- ``POST /api/datasets/{repo}/preupload/{rev}`` (regular or LFS, and the remote oid of each path);
- the git LFS batch API ``POST /datasets/{repo}.git/info/lfs/objects/batch`` (basic transfer), the
  ``PUT`` of each object, which checks its sha256, and the verify call;
- ``POST /api/datasets/{repo}/commit/{rev}`` (NDJSON: header, file, lfsFile, deletedFile,
  deletedFolder; ``parentCommit``; ``create_pr=1``);
- pull requests: ``GET .../discussions``, ``GET .../discussions/{num}``, ``POST .../discussions/{num}/merge``.

Repos keep every commit, their refs (branches and ``refs/pr/N``) and their own LFS store, so the tests
can assert what was uploaded: bytes, sha256, how many objects were sent and how many commits made.
Writes need ``Authorization: Bearer <token>``. Tests can make a request fail (``fail``) or hang
(``hold``) to interrupt a publish.

Not covered (it only shows against the real Hub): the Xet protocol (the tests set
``HF_HUB_DISABLE_XET=1``), multipart LFS uploads of large files, rate limits and the server's commit
timeout, and the Hub's exact rules for choosing LFS (here: the repo's ``.gitattributes`` patterns,
binary content or more than 10 MiB).
"""

from __future__ import annotations

import base64
import contextlib
import fnmatch
import hashlib
import itertools
import json
import re
import socket
import threading
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, unquote, urlsplit

import yaml

PAGE_SIZE = 1000  # the Hub's page size for an unexpanded tree listing
REGULAR_FILE_LIMIT = 10 * 1024 * 1024  # larger files must go through LFS
# The patterns of the .gitattributes the Hub puts in a new dataset repo (the ones that matter here).
DEFAULT_LFS_PATTERNS = ["*.tar", "*.tar.*", "*.gz", "*.tgz", "*.zip", "*.parquet", "*.arrow", "*.npy"]
_LFS_POINTER = "version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {size}\n"


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass(frozen=True)
class Entry:
    size: int
    blob_id: str
    lfs_sha256: str | None = None  # None: a regular file, whose bytes are ``content``
    content: bytes | None = None

    @property
    def oid(self) -> str:
        """What preupload reports for an existing path: the sha256 for LFS files, else the blob id."""
        return self.lfs_sha256 or self.blob_id


@dataclass
class Commit:
    oid: str
    parent: str | None
    tree: dict[str, Entry]
    title: str


@dataclass
class PullRequest:
    num: int
    title: str
    description: str
    base: str  # the branch it merges into
    start: str  # the base's head when it was opened
    status: str = "open"
    merge_commit: str | None = None


@dataclass
class Repo:
    repo_id: str
    private: bool
    refs: dict[str, str] = field(default_factory=dict)  # "main", "refs/pr/1", ... -> commit oid
    commits: dict[str, Commit] = field(default_factory=dict)
    lfs: dict[str, bytes] = field(default_factory=dict)  # sha256 -> content
    pending: dict[str, int] = field(default_factory=dict)  # sha256 -> size announced in a batch
    prs: list[PullRequest] = field(default_factory=list)
    uploads: list[str] = field(default_factory=list)  # sha256 of every object stored by a PUT

    def head(self, ref: str) -> Commit:
        return self.commits[self.refs[ref]]


@dataclass
class _Rule:
    method: str
    path_part: str
    skip: int  # matching requests let through first
    times: int  # then this many are failed (or held)
    status: int = 500
    release: threading.Event | None = None  # set for a hold
    reached: threading.Event = field(default_factory=threading.Event)


class HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


class FakeHub:
    """The server and its state; ``start()`` binds 127.0.0.1 on a free port."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str, int]] = []  # method, path, status
        self.auth_headers: list[str] = []  # every Authorization header received
        self._rules: list[_Rule] = []
        self._lock = threading.RLock()
        self._counter = itertools.count(1)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.hub = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeHub:
        self._thread.start()
        return self

    def stop(self) -> None:
        for rule in self._rules:
            if rule.release:
                rule.release.set()
        self._server.shutdown()
        self._server.server_close()

    # --- what the tests arrange and inspect -------------------------------------------------------

    def fail(self, method: str, path_part: str, *, after: int = 0, times: int = 1, status: int = 500) -> None:
        """Answer ``status`` to matching requests, once ``after`` of them have gone through."""
        self._rules.append(_Rule(method, path_part, after, times, status))

    def hold(self, method: str, path_part: str, *, after: int) -> _Rule:
        """Hang the first matching request after ``after`` of them (its ``reached`` is set) until
        ``release`` is set; the held request then fails without storing anything."""
        rule = _Rule(method, path_part, after, 1, 503, release=threading.Event())
        self._rules.append(rule)
        return rule

    def files(self, repo_id: str, ref: str = "main") -> dict[str, bytes]:
        """Every file of ``ref`` with its content (LFS objects resolved)."""
        repo = self.repos[repo_id]
        return {
            path: entry.content if entry.lfs_sha256 is None else repo.lfs[entry.lfs_sha256]
            for path, entry in repo.head(ref).tree.items()
        }

    def history(self, repo_id: str, ref: str = "main") -> list[Commit]:
        """The commits of ``ref``, newest first."""
        repo = self.repos[repo_id]
        commits, oid = [], repo.refs[ref]
        while oid is not None:
            commits.append(repo.commits[oid])
            oid = repo.commits[oid].parent
        return commits

    def snapshot(self, repo_id: str) -> Repo:
        """A copy of a repo's state, to ``restore`` after a test that publishes to it again."""
        with self._lock:
            old = self.repos[repo_id]
            prs = [replace(pr) for pr in old.prs]
            return Repo(repo_id, old.private, dict(old.refs), dict(old.commits), dict(old.lfs), {}, prs)

    def restore(self, saved: Repo) -> None:
        with self._lock:
            self.repos[saved.repo_id] = saved

    def count(self, method: str, path_part: str, since: int = 0) -> int:
        """Successful requests matching, among those after the first ``since``."""
        return sum(
            1
            for m, path, status in self.requests[since:]
            if m == method and path_part in path and status < 400
        )

    # --- the Hub's behaviour ----------------------------------------------------------------------

    def _rule_for(self, method: str, path: str) -> _Rule | None:
        with self._lock:
            for rule in self._rules:
                if rule.method == method and rule.path_part in path and rule.times > 0:
                    if rule.skip > 0:
                        rule.skip -= 1
                        return None
                    rule.times -= 1
                    return rule
        return None

    def _new_commit(self, repo: Repo, parent: str | None, tree: dict[str, Entry], title: str) -> Commit:
        digest = hashlib.sha1(f"{parent}\n{title}\n{next(self._counter)}".encode())
        for path in sorted(tree):
            digest.update(f"{path}\0{tree[path].blob_id}\n".encode())
        commit = Commit(digest.hexdigest(), parent, tree, title)
        repo.commits[commit.oid] = commit
        return commit

    def create_repo(self, repo_id: str, private: bool = False) -> Repo:
        with self._lock:
            if repo_id in self.repos:
                raise HubError(409, "You already created this dataset repo")
            repo = Repo(repo_id, private)
            attributes = "".join(f"{p} filter=lfs diff=lfs merge=lfs -text\n" for p in DEFAULT_LFS_PATTERNS)
            data = attributes.encode()
            tree = {".gitattributes": Entry(len(data), git_blob_sha1(data), content=data)}
            repo.refs["main"] = self._new_commit(repo, None, tree, "initial commit").oid
            self.repos[repo_id] = repo
            return repo

    def repo(self, repo_id: str, authorized: bool) -> Repo:
        repo = self.repos.get(repo_id)
        if repo is None or (repo.private and not authorized):
            raise HubError(404, "Repository not found", "RepoNotFound")
        return repo

    @staticmethod
    def branch(repo: Repo, revision: str) -> str:
        """The ref a write goes to: a branch or ``refs/pr/N``."""
        ref = revision.removeprefix("refs/heads/")
        if ref not in repo.refs:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return ref

    def resolve(self, repo: Repo, revision: str) -> Commit:
        """What a read sees: a branch, ``refs/pr/N`` or a commit sha."""
        if revision in repo.commits:
            return repo.commits[revision]
        return repo.head(self.branch(repo, revision))

    @staticmethod
    def lfs_patterns(tree: dict[str, Entry]) -> list[str]:
        attributes = tree.get(".gitattributes")
        if attributes is None or attributes.content is None:
            return []
        return [line.split()[0] for line in attributes.content.decode().splitlines() if "filter=lfs" in line]

    def upload_mode(self, tree: dict[str, Entry], path: str, size: int, sample: bytes) -> str:
        name = path.rsplit("/", 1)[-1]
        if any(fnmatch.fnmatch(name, pattern) for pattern in self.lfs_patterns(tree)):
            return "lfs"
        return "lfs" if size > REGULAR_FILE_LIMIT or b"\0" in sample else "regular"

    def commit(
        self, repo: Repo, revision: str, lines: list[dict], create_pr: bool
    ) -> tuple[Commit, int | None]:
        header = lines[0]["value"] if lines and lines[0].get("key") == "header" else None
        if header is None:
            raise HubError(400, "the first line of a commit must be its header")
        with self._lock:
            ref = self.branch(repo, revision)
            parent, wanted = repo.head(ref), header.get("parentCommit")
            if create_pr and wanted:  # the pull request starts from the given commit
                if wanted not in repo.commits:
                    raise HubError(404, f"Invalid rev id: {wanted}", "RevisionNotFound")
                parent = repo.commits[wanted]
            elif wanted and wanted != parent.oid:  # the branch moved: refuse, apply nothing
                raise HubError(412, "A commit has happened since. Please refresh and try again.")
            pr_num = None
            if create_pr:
                pr_num = len(repo.prs) + 1
                repo.prs.append(
                    PullRequest(pr_num, header["summary"], header.get("description", ""), ref, parent.oid)
                )
                ref = f"refs/pr/{pr_num}"
            tree = dict(parent.tree)
            for line in lines[1:]:
                self._apply(repo, tree, line["key"], line["value"])
            commit = self._new_commit(repo, parent.oid, tree, header["summary"])
            repo.refs[ref] = commit.oid
            return commit, pr_num

    @staticmethod
    def _apply(repo: Repo, tree: dict[str, Entry], key: str, value: dict) -> None:
        path = value["path"]
        if key == "file":
            data = base64.b64decode(value["content"])
            if len(data) > REGULAR_FILE_LIMIT:
                raise HubError(400, f"{path}: files larger than 10 MiB must be stored with LFS")
            tree[path] = Entry(len(data), git_blob_sha1(data), content=data)
        elif key == "lfsFile":
            oid = value["oid"]
            if oid not in repo.lfs:
                raise HubError(422, f"{path}: LFS object {oid} was never uploaded")
            size = len(repo.lfs[oid])
            pointer = _LFS_POINTER.format(oid=oid, size=size).encode()
            tree[path] = Entry(size, git_blob_sha1(pointer), lfs_sha256=oid)
        elif key == "deletedFile":
            if path not in tree:
                raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
            del tree[path]
        elif key == "deletedFolder":
            folder = path.rstrip("/") + "/"
            for name in [name for name in tree if name.startswith(folder)]:
                del tree[name]
        else:
            raise HubError(400, f"unknown commit operation {key!r}")

    def merge(self, repo: Repo, num: int) -> Commit:
        with self._lock:
            pr = next((pr for pr in repo.prs if pr.num == num), None)
            if pr is None or pr.status != "open":
                raise HubError(404, f"no open pull request #{num}")
            start, head = repo.commits[pr.start].tree, repo.head(f"refs/pr/{num}").tree
            base = repo.head(pr.base)
            changed = {p for p in start.keys() | head.keys() if start.get(p) != head.get(p)}
            conflicts = sorted(p for p in changed if base.tree.get(p) != start.get(p))
            if conflicts:
                raise HubError(409, f"merge conflict on {', '.join(conflicts[:5])}")
            tree = dict(base.tree)
            for path in changed:
                if path in head:
                    tree[path] = head[path]
                else:
                    tree.pop(path, None)
            commit = self._new_commit(repo, base.oid, tree, f"Merge pull request #{num}: {pr.title}")
            repo.refs[pr.base] = commit.oid
            pr.status, pr.merge_commit = "merged", commit.oid
            return commit


def _tree_entries(tree: dict[str, Entry], path: str, recursive: bool) -> list[dict]:
    """What the tree endpoint lists under ``path``: files and folders, as the Hub describes them."""
    prefix = path.strip("/") + "/" if path.strip("/") else ""
    files: list[dict] = []
    folders: set[str] = set()
    for name in sorted(tree):
        if not name.startswith(prefix):
            continue
        rest = name[len(prefix) :].split("/")
        for depth in range(1, len(rest)):
            if recursive or depth == 1:
                folders.add(prefix + "/".join(rest[:depth]))
        if recursive or len(rest) == 1:
            entry = tree[name]
            item = {"type": "file", "oid": entry.blob_id, "size": entry.size, "path": name}
            if entry.lfs_sha256 is not None:
                pointer = _LFS_POINTER.format(oid=entry.lfs_sha256, size=entry.size)
                item["lfs"] = {"oid": entry.lfs_sha256, "size": entry.size, "pointerSize": len(pointer)}
            files.append(item)
    listed = [
        {"type": "directory", "oid": hashlib.sha1(folder.encode()).hexdigest(), "size": 0, "path": folder}
        for folder in sorted(folders)
    ]
    return listed + files


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ThreadingHTTPServer
    body = b""

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in separate writes: without this, Nagle's algorithm and the
        # client's delayed ACK hold each response back for tens of milliseconds.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args) -> None:  # quiet: the tests read ``requests``
        pass

    @property
    def hub(self) -> FakeHub:
        return self.server.hub  # type: ignore[attr-defined]

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    # --- plumbing ---------------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send(self, status: int, payload, headers: dict[str, str] | None = None) -> None:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    @property
    def authorized(self) -> bool:
        return self.headers.get("Authorization") == f"Bearer {self.hub.token}"

    def _require_write(self) -> None:
        if not self.authorized:
            raise HubError(401, "Invalid credentials in Authorization header")

    def _handle(self, method: str) -> None:
        split = urlsplit(self.path)
        if auth := self.headers.get("Authorization"):
            self.hub.auth_headers.append(auth)
        rule = self.hub._rule_for(method, split.path)
        if rule is not None and rule.release is not None:  # hang, as a stalled upload does
            rule.reached.set()
            rule.release.wait()
            self.close_connection = True
            self.hub.requests.append((method, split.path, rule.status))
            with contextlib.suppress(OSError):
                self._send(rule.status, {"error": "held"}, None)
            return
        self.body = self._read_body()
        try:
            if rule is not None:
                raise HubError(rule.status, "injected failure")
            status, payload, headers = self._route(method, split.path, parse_qs(split.query))
        except HubError as error:
            status, payload = error.status, {"error": error.message}
            headers = {"X-Error-Message": error.message} | (
                {"X-Error-Code": error.code} if error.code else {}
            )
        self.hub.requests.append((method, split.path, status))  # before the answer: counts are current
        with contextlib.suppress(OSError):  # the client may be gone (a test killed it)
            self._send(status, payload, headers)

    def _route(self, method: str, path: str, query: dict[str, list[str]]):
        hub = self.hub
        parts = [unquote(part) for part in path.strip("/").split("/")]
        if (method, parts) == ("POST", ["api", "repos", "create"]):
            self._require_write()
            body = json.loads(self.body)
            if body.get("type") != "dataset":
                raise HubError(400, "this server only has dataset repos")
            repo_id = f"{body['organization']}/{body['name']}"
            hub.create_repo(repo_id, body.get("visibility") == "private" or bool(body.get("private")))
            return 200, {"url": f"{hub.url}/datasets/{repo_id}", "name": repo_id}, None
        if (method, parts) == ("POST", ["api", "validate-yaml"]):
            return self._validate_yaml(json.loads(self.body)["content"])
        if parts[:2] == ["api", "datasets"] and len(parts) >= 4:
            return self._api(method, parts[2] + "/" + parts[3], parts[4:], query)
        if (
            method == "POST"
            and len(parts) >= 7
            and parts[0] == "datasets"
            and parts[4:]
            == [
                "lfs",
                "objects",
                "batch",
            ]
        ):
            return self._lfs_batch(parts[1] + "/" + parts[2].removesuffix(".git"))
        if method == "PUT" and parts[0] == "lfs-upload" and len(parts) == 4:
            return self._lfs_put(parts[1] + "/" + parts[2], parts[3])
        if method == "POST" and parts[0] == "lfs-verify" and len(parts) == 3:
            return self._lfs_verify(parts[1] + "/" + parts[2])
        raise HubError(404, f"no route for {method} {path}")

    # --- endpoints --------------------------------------------------------------------------------

    def _validate_yaml(self, content: str):
        match = re.match(r"^---\n(.*?)\n---\n", content, re.DOTALL)
        if match is None:
            return 200, {"errors": [], "warnings": [{"message": "empty or missing yaml metadata"}]}, None
        try:
            metadata = yaml.safe_load(match.group(1))
        except yaml.YAMLError as error:
            return 400, {"errors": [{"message": f"invalid YAML: {error}"}]}, None
        if not isinstance(metadata, dict):
            return 400, {"errors": [{"message": "the metadata must be a mapping"}]}, None
        return 200, {"errors": [], "warnings": []}, None

    def _api(self, method: str, repo_id: str, rest: list[str], query: dict[str, list[str]]):
        hub = self.hub
        repo = hub.repo(repo_id, self.authorized)
        if method == "GET" and (not rest or rest[0] == "revision"):
            head = hub.resolve(repo, rest[1] if rest else "main")
            siblings = [{"rfilename": name} for name in sorted(head.tree)]
            return (
                200,
                {
                    "_id": repo_id,
                    "id": repo_id,
                    "private": repo.private,
                    "sha": head.oid,
                    "siblings": siblings,
                },
                None,
            )
        if method == "GET" and rest[0] == "tree":
            tree = hub.resolve(repo, rest[1]).tree
            folder = "/".join(rest[2:])
            if folder and not any(name.startswith(folder.rstrip("/") + "/") for name in tree):
                raise HubError(404, f"{folder} does not exist", "EntryNotFound")
            recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
            entries = _tree_entries(tree, folder, recursive)
            start = int(query.get("cursor", ["0"])[0])
            page = entries[start : start + PAGE_SIZE]
            headers = {}
            if start + PAGE_SIZE < len(entries):
                params = f"recursive={str(recursive).lower()}&expand=false&cursor={start + PAGE_SIZE}"
                base = f"{hub.url}/api/datasets/{repo_id}/tree/{quote(rest[1], safe='')}"
                if folder:
                    base += "/" + quote(folder, safe="")
                headers["Link"] = f'<{base}?{params}>; rel="next"'
            return 200, page, headers
        if method == "POST" and rest[0] == "paths-info":
            tree = hub.resolve(repo, rest[1]).tree
            form = parse_qs(self.body.decode())
            wanted = form.get("paths", [])
            entries = [e for e in _tree_entries(tree, "", recursive=True) if e["path"] in wanted]
            return 200, entries, None
        if method == "POST" and rest[0] == "preupload":
            self._require_write()
            tree = hub.resolve(repo, rest[1]).tree
            files = []
            for item in json.loads(self.body)["files"]:
                sample = base64.b64decode(item["sample"])
                existing = tree.get(item["path"])
                files.append(
                    {
                        "path": item["path"],
                        "uploadMode": hub.upload_mode(tree, item["path"], item["size"], sample),
                        "shouldIgnore": False,
                        "oid": existing.oid if existing else None,
                    }
                )
            return 200, {"files": files}, None
        if method == "POST" and rest[0] == "commit":
            self._require_write()
            lines = [json.loads(line) for line in self.body.splitlines() if line.strip()]
            create_pr = query.get("create_pr", ["0"])[0] == "1"
            commit, pr_num = hub.commit(repo, rest[1], lines, create_pr)
            pr_url = f"{hub.url}/datasets/{repo_id}/discussions/{pr_num}" if pr_num else None
            payload = {
                "success": True,
                "commitOid": commit.oid,
                "commitUrl": f"{hub.url}/datasets/{repo_id}/commit/{commit.oid}",
                "pullRequestUrl": pr_url,
            }
            return 200, payload, None
        if method == "GET" and rest == ["discussions"]:
            kind, status = query.get("type", ["all"])[0], query.get("status", ["all"])[0]
            found = [
                pr
                for pr in reversed(repo.prs)
                if kind in ("all", "pull_request") and status in ("all", pr.status)
            ]
            start = int(query.get("p", ["0"])[0]) * 50
            return (
                200,
                {
                    "discussions": [self._pr(repo, pr) for pr in found[start : start + 50]],
                    "count": len(found),
                    "start": start,
                },
                None,
            )
        if method == "GET" and len(rest) == 2 and rest[0] == "discussions":
            pr = next((pr for pr in repo.prs if pr.num == int(rest[1])), None)
            if pr is None:
                raise HubError(404, f"no discussion #{rest[1]}")
            details = {
                **self._pr(repo, pr),
                "events": [],
                "changes": {"base": f"refs/heads/{pr.base}", "mergeCommitId": pr.merge_commit},
                "filesWithConflicts": [],
                "diff": "",
            }
            return 200, details, None
        if method == "POST" and len(rest) == 3 and rest[0] == "discussions" and rest[2] == "merge":
            self._require_write()
            hub.merge(repo, int(rest[1]))
            return 200, {}, None
        raise HubError(404, f"no route for {method} /api/datasets/{repo_id}/{'/'.join(rest)}")

    @staticmethod
    def _pr(repo: Repo, pr: PullRequest) -> dict:
        return {
            "num": pr.num,
            "title": pr.title,
            "status": pr.status,
            "isPullRequest": True,
            "createdAt": "2026-01-01T00:00:00.000Z",
            "author": {"name": "publisher"},
            "repo": {"name": repo.repo_id, "type": "dataset"},
        }

    def _lfs_batch(self, repo_id: str):
        self._require_write()
        hub = self.hub
        repo = hub.repo(repo_id, True)
        body = json.loads(self.body)
        if body.get("operation") != "upload" or body.get("hash_algo", "sha256") != "sha256":
            raise HubError(400, "only sha256 uploads are supported")
        objects = []
        for item in body["objects"]:
            oid, size = item["oid"], item["size"]
            if oid in repo.lfs:
                objects.append({"oid": oid, "size": size})  # already stored: no actions, no upload
                continue
            with hub._lock:
                repo.pending[oid] = size
            objects.append(
                {
                    "oid": oid,
                    "size": size,
                    "authenticated": True,
                    "actions": {
                        "upload": {"href": f"{hub.url}/lfs-upload/{repo_id}/{oid}", "header": {}},
                        "verify": {"href": f"{hub.url}/lfs-verify/{repo_id}", "header": {}},
                    },
                }
            )
        return (
            200,
            {"transfer": "basic", "objects": objects},
            {"Content-Type": "application/vnd.git-lfs+json"},
        )

    def _lfs_put(self, repo_id: str, oid: str):
        hub = self.hub
        repo = hub.repos[repo_id]
        data = self.body
        if hashlib.sha256(data).hexdigest() != oid or repo.pending.get(oid) != len(data):
            raise HubError(400, f"content does not match LFS object {oid}")
        with hub._lock:
            repo.lfs[oid] = data
            repo.uploads.append(oid)
        return 200, b"", None

    def _lfs_verify(self, repo_id: str):
        self._require_write()
        repo = self.hub.repos[repo_id]
        body = json.loads(self.body)
        stored = repo.lfs.get(body["oid"])
        if stored is None or len(stored) != body["size"]:
            raise HubError(404, f"LFS object {body['oid']} not found")
        return 200, {}, None
