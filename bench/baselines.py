"""What a user would run instead of syncd, each as its own process.

``python -m bench.baselines httpx URL ROOT --workers 4``: a raw httpx thread pool uploading every
file under ROOT once (no journal, no pacing, no hashing), the floor any client can reach.
``python -m bench.baselines walk ROOT``: a bare ``os.scandir`` + ``stat`` walk of ROOT, the floor
for any Python scan (:func:`bare_walk` runs it in-process).
``python -m bench.baselines sdk URL ROOT``: the official SDK in a sequential loop, retrying a
failed upload as a user's loop would.
Both print one JSON line: {"uploads": n, "errors": n, "seconds": s} (seconds exclude start-up).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HEADERS = {"anthropic-version": "2023-06-01", "anthropic-beta": "files-api-2025-04-14"}


def bare_walk(root: Path) -> tuple[int, int]:
    """Every regular file under ``root`` with its stat, as plainly as Python can: (files,
    bytes). No ignore rules, no journal, no sorting: what any Python scan must at least do."""
    files = size = 0
    stack = [os.fsencode(root)]
    while stack:
        with os.scandir(stack.pop()) as it:
            for entry in it:
                info = entry.stat(follow_symlinks=False)
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    files += 1
                    size += info.st_size
    return files, size


def _files(root: Path) -> list[Path]:
    out = []
    for dirpath, _dirs, names in os.walk(root):
        out.extend(Path(dirpath) / name for name in names)
    return sorted(out)


def _remote_name(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix().replace("%", "%25").replace("/", "%2F")


def run_httpx(url: str, key: str, root: Path, workers: int) -> dict[str, float]:
    """Upload every file once from a pool of ``workers`` threads sharing one httpx.Client."""
    import httpx

    files = _files(root)
    errors = 0
    with httpx.Client(base_url=url, headers={**HEADERS, "x-api-key": key}, timeout=120) as http:

        def upload(path: Path) -> bool:
            with open(path, "rb") as fh:
                response = http.post("/v1/files", files={
                    "file": (_remote_name(root, path), fh, "text/plain")})
            return response.is_success

        started = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            errors = sum(1 for ok in pool.map(upload, files) if not ok)
        seconds = time.perf_counter() - started
    return {"uploads": len(files), "errors": errors, "seconds": seconds}


def run_sdk(url: str, key: str, root: Path, max_retries: int) -> dict[str, float]:
    """Upload every file once, one after the other, with the official SDK."""
    import anthropic

    client = anthropic.Anthropic(api_key=key, base_url=url, max_retries=max_retries)
    files = _files(root)
    errors = 0
    started = time.perf_counter()
    for path in files:
        for _attempt in range(20):  # a user's loop keeps trying a file the SDK gave up on
            try:
                with open(path, "rb") as fh:
                    client.beta.files.upload(file=(_remote_name(root, path), fh, "text/plain"))
                break
            except anthropic.APIError:
                errors += 1
                time.sleep(1.0)
    seconds = time.perf_counter() - started
    client.close()
    return {"uploads": len(files), "errors": errors, "seconds": seconds}


def main(argv: list[str] | None = None) -> int:
    """Entry point: run one baseline, print its JSON line."""
    parser = argparse.ArgumentParser(prog="python -m bench.baselines")
    parser.add_argument("kind", choices=["httpx", "sdk", "walk"])
    parser.add_argument("url", help="the API's base URL (for walk: the root)")
    parser.add_argument("root", type=Path, nargs="?")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--max-retries", type=int, default=0)
    args = parser.parse_args(argv)
    if args.kind == "walk":
        started = time.perf_counter()
        files, size = bare_walk(Path(args.url))
        print(json.dumps({"files": files, "bytes": size,
                          "seconds": time.perf_counter() - started}), flush=True)
        return 0
    key = os.environ["ANTHROPIC_API_KEY"]
    if args.kind == "httpx":
        result = run_httpx(args.url, key, args.root, args.workers)
    else:
        result = run_sdk(args.url, key, args.root, args.max_retries)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
