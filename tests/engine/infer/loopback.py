"""A small HTTP server on 127.0.0.1 standing in for download.pytorch.org in download tests."""
from __future__ import annotations

import hashlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def hashed_name(stem: str, payload: bytes, good: bool = True) -> str:
    """``<stem>-<8 hex>.pth`` carrying the payload's SHA-256 prefix (or a wrong one), like torchvision's files."""
    digest = hashlib.sha256(payload).hexdigest()[:8]
    return f"{stem}-{digest if good else ('0' if digest[0] != '0' else '1') + digest[1:]}.pth"


class LoopbackServer:
    """Serves ``files`` (URL path -> bytes) with Content-Length; ``delay`` seconds between 64 KiB
    blocks makes a download slow enough to cancel."""

    def __init__(self, files: dict[str, bytes] | None = None, delay: float = 0.0) -> None:
        self.files = dict(files or {})
        self.delay = delay
        self.requests: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests.append(self.path)
                body = outer.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    for i in range(0, len(body), 65536):
                        self.wfile.write(body[i:i + 65536])
                        if outer.delay:
                            time.sleep(outer.delay)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client cancelled

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def __enter__(self) -> "LoopbackServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)
