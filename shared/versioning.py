"""Optimistic concurrency: `version` on mutable rows, `ETag: "<version>"`, `If-Match` → 412."""

from __future__ import annotations

from fastapi import Request, Response

from shared.errors import VersionConflict


def set_etag(response: Response, version: int) -> None:
    response.headers["ETag"] = f'"{version}"'


def check_if_match(request: Request, version: int) -> None:
    """Refuse with 412 `version_conflict` when `If-Match` names another version."""
    header = request.headers.get("if-match")
    if header is None or header.strip() == "*":
        return
    wanted = {tag.strip().removeprefix("W/").strip('"') for tag in header.split(",")}
    if str(version) not in wanted:
        raise VersionConflict(
            f"If-Match {header} does not match the current version \"{version}\"; "
            "fetch the resource again and re-apply your change.", current_version=version)
