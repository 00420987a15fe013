"""Publishing the built dataset to a Hub dataset repo: incremental, atomic, resumable.

``plan_release`` lists the remote tree once (at one commit), compares it with the build — each tar
by its index's ``hash_lfs`` (sha256) or ``hash`` (git blob sha1), every other file by its own
hashes — and returns a ``Plan``: the files to add, update and delete, their bytes, and how they are
cut into commits. ``publish`` makes those commits:

- a tar and its index always travel in the same commit;
- a plan that fits one commit (the Hub's limits below) is one commit on the branch, made against the
  commit the plan was computed from (``parent_commit``: if the branch moved, the Hub refuses and
  nothing is half-applied);
- a larger plan (a first publish: 2000 files) goes to a pull request, commit after commit, merged
  at the end: readers of the branch see the old dataset until the merge, then the new one;
- a rerun after an interruption uploads only what is missing: LFS objects already on the Hub are
  skipped by the LFS batch API (or Xet's deduplication), and an open pull request left by an
  earlier run is continued from its own tree, then merged.

No Dagster here: the ``hub_release`` asset and ``e6-assets publish`` call these functions.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, get_token
from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError
from huggingface_hub.hf_api import RepoFile

from e6_assets.core.dataset_card import Provenance, card_facts, render_card
from e6_assets.core.layout import DataLayout
from e6_assets.core.meta_json import write_tar_gz
from e6_assets.core.shards import SHARD_KEYS
from e6_assets.core.tars import TarIndex

DEFAULT_REVISION = "main"
DEFAULT_PREFIX = "captions/"
REPO_TYPE = "dataset"
CARD_PATH = "README.md"

# The Hub's limits, from "Repository limitations and recommendations"
# (https://huggingface.co/docs/hub/repositories-recommendations): "Commit size: <100 files", because
# each file of a commit is checked server-side within the commit request's 60 s timeout: "we
# recommend adding around 50-100 files per commit". A shard's tar and index count as two.
MAX_FILES_PER_COMMIT = 100
# Files the Hub stores as regular git blobs (text, at most 10 MiB; larger or binary files go
# through LFS) travel base64-encoded inside the commit request itself. The documented limits give no
# payload figure; the commit endpoint long refused requests over 100 MB (huggingface_hub#920), so the
# inline files of one commit are kept to half that. At full scale 50 tar indexes are about 25 MB.
MAX_INLINE_BYTES_PER_COMMIT = 50 * 1024 * 1024
INLINE_FILE_LIMIT = 10 * 1024 * 1024
# (huggingface_hub sends the files of a commit to the preupload and LFS batch endpoints 256 at a
# time, its UPLOAD_BATCH_MAX_NUM_FILES: a commit of 100 files is one request of each.)

PULL_REQUEST_TITLE = "Publish the caption dataset (e6-assets)"
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")
_SHARD_FILE = re.compile(r"^\d{4}\.(tar|json)$")


class PublishError(RuntimeError):
    """Publishing cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class PublishTarget:
    """A Hub dataset repo, the branch to publish to, and the folder of the tars in it."""

    repo_id: str
    revision: str = DEFAULT_REVISION
    prefix: str = DEFAULT_PREFIX
    private: bool = False
    endpoint: str | None = None  # None: huggingface_hub's (HF_ENDPOINT, default https://huggingface.co)

    def __post_init__(self) -> None:
        if not _REPO_ID.match(self.repo_id):
            raise ValueError(f"E6_PUBLISH_REPO={self.repo_id!r}: expected a dataset repo as OWNER/NAME")
        if not self.revision.strip():
            raise ValueError("E6_PUBLISH_REVISION is empty: expected a branch such as main")
        prefix = self.prefix.strip().strip("/")
        if ".." in prefix.split("/"):
            raise ValueError(f"E6_PUBLISH_PREFIX={self.prefix!r}: expected a folder inside the repo")
        object.__setattr__(self, "prefix", f"{prefix}/" if prefix else "")

    def __str__(self) -> str:
        return f"datasets/{self.repo_id}@{self.revision}"


def hub_api(target: PublishTarget) -> HfApi:
    """The client; its token comes from huggingface_hub itself (``HF_TOKEN`` or the login), so this
    project never holds it."""
    return HfApi(endpoint=target.endpoint, library_name="e6_assets")


# --- what the build offers and what the Hub holds ---------------------------------------------------


@dataclass(frozen=True)
class ReleaseFile:
    path_in_repo: str
    content: Path | bytes
    size: int
    sha256: str  # how the Hub identifies an LFS file
    git_sha1: str  # how it identifies a regular file (its git blob id)
    shard: str | None = None  # a tar and its index: always in the same commit

    def same_as(self, remote: RemoteFile) -> bool:
        if remote.lfs_sha256 is not None:
            return remote.lfs_sha256 == self.sha256 and remote.size == self.size
        return remote.blob_id == self.git_sha1

    @property
    def inline(self) -> bool:
        """Whether the Hub may take it as a regular file, inside the commit request."""
        return self.size <= INLINE_FILE_LIMIT and not self.path_in_repo.endswith((".tar", ".gz"))


@dataclass(frozen=True)
class RemoteFile:
    path: str
    size: int
    blob_id: str
    lfs_sha256: str | None


def _hashed(path_in_repo: str, content: Path | bytes, shard: str | None = None) -> ReleaseFile:
    """Both hashes the Hub may compare a file by, in one pass over it."""
    in_memory = isinstance(content, bytes)
    size = len(content) if in_memory else content.stat().st_size
    sha256, sha1 = hashlib.sha256(), hashlib.sha1(b"blob %d\0" % size)
    for chunk in [content] if in_memory else _read_chunks(content):
        sha256.update(chunk)
        sha1.update(chunk)
    return ReleaseFile(path_in_repo, content, size, sha256.hexdigest(), sha1.hexdigest(), shard)


def _read_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 22):
            yield chunk


def meta_lat_v2_tar_gz(layout: DataLayout) -> Path:
    """``meta_lat_v2.tar.gz``, compressed from ``meta_lat_v2.json`` when missing or older than it
    (reproducible: the same JSON gives the same bytes)."""
    path = layout.root / "meta_lat_v2.tar.gz"
    source = layout.meta_lat_v2_json
    if not path.exists() or path.stat().st_mtime < source.stat().st_mtime:
        write_tar_gz(source, path)
    return path


def require_built(layout: DataLayout, merged: bool) -> None:
    """Refuse a partial build: publishing it would replace a whole dataset with part of one."""
    missing = [key for key in SHARD_KEYS if not (layout.tar(key).exists() and layout.tar_index(key).exists())]
    if missing:
        raise PublishError(
            f"{len(missing)} shards have no tar or index yet (first: {missing[0]}): build every shard "
            "(e6-assets build) before publishing"
        )
    if not layout.meta_cap_tar_gz.exists():
        raise PublishError(f"{layout.meta_cap_tar_gz} is not built yet: build the merged files first")
    if merged and (
        layout.missing_meta_lat_fragments()
        or not layout.meta_lat_v2_json.exists()
        or not layout.missing_json.exists()
    ):
        raise PublishError(
            "E6_ID_UNIVERSE is set but meta_lat_v2.json and missing.json are not built: build them "
            "(e6-assets build --id-universe ...) or unset E6_ID_UNIVERSE to publish the captions alone"
        )


def release_files(layout: DataLayout, target: PublishTarget, card: str, merged: bool) -> list[ReleaseFile]:
    """Everything the release holds, from a complete build (``require_built``): the tars (hashes from
    their indexes), the indexes, the merged files and the card."""
    files: list[ReleaseFile] = []
    for key in SHARD_KEYS:
        tar, index_bytes = layout.tar(key), layout.tar_index(key).read_bytes()
        index = TarIndex.from_json(index_bytes)
        size = tar.stat().st_size
        if size != index.filesize:
            raise PublishError(
                f"{tar} is {size} bytes but its index says {index.filesize}: rebuild shard {key}"
            )
        files.append(ReleaseFile(f"{target.prefix}{key}.tar", tar, size, index.hash_lfs, index.hash, key))
        files.append(_hashed(f"{target.prefix}{key}.json", index_bytes, key))
    merged_files = [layout.meta_cap_tar_gz]
    if merged:
        merged_files += [meta_lat_v2_tar_gz(layout), layout.missing_json]
    files += [_hashed(path.name, path) for path in merged_files]
    files.append(_hashed(CARD_PATH, card.encode()))
    return files


@dataclass(frozen=True)
class RemoteState:
    exists: bool
    head: str | None  # the commit the listing is of; None when the repo does not exist yet
    files: dict[str, RemoteFile]


def remote_state(api: HfApi, target: PublishTarget, revision: str | None = None) -> RemoteState:
    """The files of ``revision`` (default: the target branch), listed once, at one commit."""
    revision = revision or target.revision
    try:
        head = api.repo_info(target.repo_id, repo_type=REPO_TYPE, revision=revision).sha
    except RevisionNotFoundError as error:
        raise PublishError(
            f"{target.repo_id} has no branch {revision!r}: create it on the Hub, or publish to main"
        ) from error
    except RepositoryNotFoundError:
        return RemoteState(False, None, {})
    entries = api.list_repo_tree(target.repo_id, recursive=True, revision=head, repo_type=REPO_TYPE)
    files = {
        entry.path: RemoteFile(entry.path, entry.size, entry.blob_id, entry.lfs.sha256 if entry.lfs else None)
        for entry in entries
        if isinstance(entry, RepoFile)
    }
    return RemoteState(True, head, files)


# --- the plan --------------------------------------------------------------------------------------

Action = Literal["add", "update", "delete"]


@dataclass(frozen=True)
class Change:
    action: Action
    path_in_repo: str
    file: ReleaseFile | None = None  # None for a deletion

    @property
    def size(self) -> int:
        return self.file.size if self.file else 0


def _managed(path: str, prefix: str) -> bool:
    """Remote files the release owns: everything under its folder (only shard files at the root)."""
    if prefix:
        return path.startswith(prefix)
    return "/" not in path and bool(_SHARD_FILE.match(path))


def diff(
    local: Iterable[ReleaseFile], remote: dict[str, RemoteFile], prefix: str
) -> tuple[list[Change], int]:
    """The changes that make ``remote`` hold ``local``, and the number of files already there."""
    changes: list[Change] = []
    unchanged = 0
    paths = set()
    for file in local:
        paths.add(file.path_in_repo)
        there = remote.get(file.path_in_repo)
        if there is None:
            changes.append(Change("add", file.path_in_repo, file))
        elif not file.same_as(there):
            changes.append(Change("update", file.path_in_repo, file))
        else:
            unchanged += 1
    changes += [
        Change("delete", path) for path in sorted(remote) if _managed(path, prefix) and path not in paths
    ]
    return changes, unchanged


def _unit(change: Change) -> tuple[int, str]:
    """What must share a commit, in commit order: each shard's files, then each other file, the card last."""
    if change.file is not None and change.file.shard is not None:
        return 0, change.file.shard
    return (2 if change.path_in_repo == CARD_PATH else 1), change.path_in_repo


def batch_changes(
    changes: Iterable[Change],
    max_files: int = MAX_FILES_PER_COMMIT,
    max_inline_bytes: int = MAX_INLINE_BYTES_PER_COMMIT,
) -> list[list[Change]]:
    """Cut ``changes`` into as few commits as the limits allow: shards in order (a shard's files
    never split), then the other files, the card last, so the card lands with the data it describes."""
    units: dict[tuple[int, str], list[Change]] = {}
    for change in changes:
        units.setdefault(_unit(change), []).append(change)
    commits: list[list[Change]] = []
    files = inline = 0
    for key in sorted(units):
        unit = units[key]
        unit_inline = sum(c.size for c in unit if c.file and c.file.inline)
        if commits and (files + len(unit) > max_files or inline + unit_inline > max_inline_bytes):
            commits.append([])
            files = inline = 0
        if not commits:
            commits.append([])
        commits[-1].extend(unit)
        files, inline = files + len(unit), inline + unit_inline
    return commits


def _ranges(keys: list[str]) -> str:
    """``0000...0003, 0042`` for a sorted list of shard keys."""
    parts: list[str] = []
    start = previous = None
    for key in [*keys, None]:
        if key is not None and previous is not None and int(key) == int(previous) + 1:
            previous = key
            continue
        if start is not None:
            parts.append(start if start == previous else f"{start}...{previous}")
        start = previous = key
    return ", ".join(parts[:8]) + (f", ... ({len(parts)} ranges)" if len(parts) > 8 else "")


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{n} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError  # pragma: no cover


@dataclass
class Plan:
    target: PublishTarget
    head: str | None  # the commit compared against; None: the repo does not exist yet
    local: list[ReleaseFile]
    changes: list[Change]
    unchanged: int
    commits: list[list[Change]] = field(init=False)

    def __post_init__(self) -> None:
        self.commits = batch_changes(self.changes)

    def of(self, action: Action) -> list[Change]:
        return [change for change in self.changes if change.action == action]

    @property
    def bytes_to_upload(self) -> int:
        return sum(change.size for change in self.changes)

    @property
    def via_pull_request(self) -> bool:
        return len(self.commits) > 1

    def _describe(self, changes: list[Change]) -> str:
        shards = sorted({c.file.shard for c in changes if c.file and c.file.shard})
        others = [c.path_in_repo for c in changes if not (c.file and c.file.shard)]
        parts = ([f"shards {_ranges(shards)}"] if shards else []) + others[:10]
        if len(others) > 10:
            parts.append(f"... ({len(others) - 10} more)")
        return "; ".join(parts)

    def describe(self) -> str:
        """The plan in a few lines, for the command line, the run log and the asset's metadata."""
        where = f"datasets/{self.target.repo_id} @ {self.target.revision}"
        state = (
            f"at {self.head[:12]}"
            if self.head
            else "does not exist yet, or cannot be read: it will be created"
        )
        local_bytes = sum(file.size for file in self.local)
        lines = [
            f"repository: {where} ({state})",
            f"release: {len(self.local)} files, {human_bytes(local_bytes)} (tars and indexes under "
            f"{self.target.prefix or 'the root'})",
        ]
        for action in ("add", "update", "delete"):
            changes = self.of(action)
            size = sum(change.size for change in changes)
            line = f"{action}: {len(changes)} files"
            if action != "delete":
                line += f", {human_bytes(size)}"
            if changes:
                line += f" ({self._describe(changes)})"
            lines.append(line)
        lines.append(f"unchanged: {self.unchanged} files")
        if not self.changes:
            lines.append("nothing to publish: the Hub already holds this build")
        elif self.via_pull_request:
            lines.append(
                f"commits: {len(self.commits)} (at most {MAX_FILES_PER_COMMIT} files each) on one pull "
                f"request, merged into {self.target.revision} at the end"
            )
        else:
            lines.append(f"commits: 1, on {self.target.revision}")
        return "\n".join(lines)

    def metadata(self) -> dict[str, int | str | bool]:
        return {
            "repo": self.target.repo_id,
            "revision": self.target.revision,
            "path_prefix": self.target.prefix,
            "remote_commit": self.head or "",
            "files_to_add": len(self.of("add")),
            "files_to_update": len(self.of("update")),
            "files_to_delete": len(self.of("delete")),
            "files_unchanged": self.unchanged,
            "bytes_to_upload": self.bytes_to_upload,
            "commits_planned": len(self.commits),
            "via_pull_request": self.via_pull_request,
        }


def plan_release(
    api: HfApi, target: PublishTarget, layout: DataLayout, provenance: Provenance, merged: bool
) -> Plan:
    """Compare the build (with its generated card) with the target branch, listed once."""
    require_built(layout, merged)
    card = render_card(card_facts(layout, target.repo_id, target.prefix, provenance, merged))
    local = release_files(layout, target, card, merged)
    remote = remote_state(api, target)
    changes, unchanged = diff(local, remote.files, target.prefix)
    return Plan(target, remote.head, local, changes, unchanged)


# --- publishing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PublishResult:
    commit: str  # the branch's head after publishing
    commits_made: int
    files_committed: int
    pull_request: str | None  # "refs/pr/N" when the publish went through a pull request

    def metadata(self) -> dict[str, int | str]:
        return {
            "published_commit": self.commit,
            "commits_made": self.commits_made,
            "files_committed": self.files_committed,
            "pull_request": self.pull_request or "",
        }


Log = Callable[[str], None]


def _operations(batch: list[Change]) -> list[CommitOperationAdd | CommitOperationDelete]:
    operations: list[CommitOperationAdd | CommitOperationDelete] = []
    for change in batch:
        if change.file is None:
            operations.append(CommitOperationDelete(change.path_in_repo))
            continue
        content = change.file.content
        operation = CommitOperationAdd(
            change.path_in_repo, str(content) if isinstance(content, Path) else content
        )
        # The client hashes what it uploads; it must be what the plan (and the tar's index) said.
        if operation.upload_info.sha256.hex() != change.file.sha256:
            raise PublishError(
                f"{content} changed since the plan was made (its sha256 is not the one its index "
                "records): rebuild the shard, then publish again"
            )
        operations.append(operation)
    return operations


def _summary(batch: list[Change]) -> str:
    shards = sorted({c.file.shard for c in batch if c.file and c.file.shard})
    others = [c.path_in_repo for c in batch if not (c.file and c.file.shard)]
    what = [f"shards {_ranges(shards)}"] if shards else []
    return f"{len(batch)} files: " + "; ".join(what + others)


def _open_pull_request(api: HfApi, target: PublishTarget) -> int | None:
    """The number of an open pull request left by an earlier, interrupted publish to this branch."""
    for discussion in api.get_repo_discussions(
        target.repo_id, repo_type=REPO_TYPE, discussion_type="pull_request", discussion_status="open"
    ):
        if discussion.title != PULL_REQUEST_TITLE:
            continue
        details = api.get_discussion_details(target.repo_id, discussion.num, repo_type=REPO_TYPE)
        if details.target_branch in (target.revision, f"refs/heads/{target.revision}"):
            return discussion.num
    return None


def publish(api: HfApi, plan: Plan, log: Log = lambda _: None) -> PublishResult:
    """Commit ``plan`` to the Hub; then list the branch again and check it holds the release."""
    target = plan.target
    if plan.changes and get_token() is None:
        raise PublishError(
            "publishing needs a Hub token with write access: set HF_TOKEN (or log in with `hf auth login`)"
        )
    if plan.changes and plan.head is None:
        api.create_repo(target.repo_id, repo_type=REPO_TYPE, private=target.private, exist_ok=True)
        log(f"created {target}")
        # Plan again against what is there now (a private repo the dry run could not read, say).
        remote = remote_state(api, target)
        plan = Plan(target, remote.head, plan.local, *diff(plan.local, remote.files, target.prefix))
    if not plan.changes:
        return PublishResult(plan.head or "", 0, 0, None)
    if plan.via_pull_request:
        made, files, pull_request = _publish_by_pull_request(api, plan, log)
    else:
        [batch] = plan.commits
        api.create_commit(
            target.repo_id,
            _operations(batch),
            commit_message=f"Publish the caption dataset: {len(batch)} files",
            commit_description=_summary(batch),
            repo_type=REPO_TYPE,
            revision=target.revision,
            parent_commit=plan.head,
        )
        made, files, pull_request = 1, len(batch), None
        log(f"committed {_summary(batch)}")
    after = remote_state(api, target)
    left, _ = diff(plan.local, after.files, target.prefix)
    if left:
        raise PublishError(
            f"after publishing, {len(left)} files on {target} still differ from the build "
            f"(first: {left[0].path_in_repo}); publish again"
        )
    return PublishResult(after.head or "", made, files, pull_request)


def _publish_by_pull_request(api: HfApi, plan: Plan, log: Log) -> tuple[int, int, str]:
    """Commit the batches to a pull request (a new one, or the one an interrupted run left open,
    continued from its own tree), then merge it into the branch in one step."""
    target = plan.target
    number = _open_pull_request(api, target)
    head, commits = plan.head, plan.commits
    if number is not None:
        remote = remote_state(api, target, f"refs/pr/{number}")
        head = remote.head
        changes, _ = diff(plan.local, remote.files, target.prefix)
        commits = batch_changes(changes)
        log(f"continuing pull request #{number}: {len(changes)} files still to commit")
    files = 0
    for done, batch in enumerate(commits, start=1):
        first = number is None
        info = api.create_commit(
            target.repo_id,
            _operations(batch),
            commit_message=PULL_REQUEST_TITLE if first else f"Publish part {done}/{len(commits)}",
            commit_description=(
                f"Merged into {target.revision} once every part is committed. Part {done}/{len(commits)}: "
                f"{_summary(batch)}"
            ),
            repo_type=REPO_TYPE,
            revision=target.revision if first else f"refs/pr/{number}",
            create_pr=first,
            parent_commit=head,
        )
        if first:
            number = info.pr_num
        head, files = info.oid, files + len(batch)
        log(f"pull request #{number}: commit {done}/{len(commits)}, {_summary(batch)}")
    assert number is not None
    api.merge_pull_request(target.repo_id, number, repo_type=REPO_TYPE)
    log(f"merged pull request #{number} into {target.revision}")
    return len(commits), files, f"refs/pr/{number}"
