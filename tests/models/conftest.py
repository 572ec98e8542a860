"""A real HTTP server on 127.0.0.1 (http.server in a thread) serving files the tests make, with faults on demand.

Each served path has a behaviour: ok, drop_first (the first response stops half-way), always_drop (every
response stops after `cut` bytes), html (a proxy's login page), slow (sleeps between chunks), no_range
(ignores Range), 404, hf (answers HEAD like the Hugging Face hub's resolve endpoint).
"""
import hashlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

HTML = b"<!DOCTYPE html><html><head><title>Sign in</title></head><body>Proxy login required</body></html>"


class Route:
    def __init__(self, data: bytes, mode: str = "ok", cut: int | None = None, delay: float = 0.0,
                 content_type: str = "application/octet-stream", etag: str | None = None):
        self.data, self.mode, self.cut, self.delay, self.content_type = data, mode, cut, delay, content_type
        self.etag = etag
        self.requests: list[dict] = []  # {"method", "range"} per request


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep pytest output clean
        pass

    def _route(self):
        route = self.server.routes.get(self.path.split("?")[0])
        if route is not None:
            route.requests.append({"method": self.command, "range": self.headers.get("Range")})
        return route

    def do_HEAD(self):
        route = self._route()
        if route is None or route.mode == "404":
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        if route.mode == "hf":
            self.send_header("X-Repo-Commit", "0" * 40)
            self.send_header("X-Linked-Etag", f'"{route.etag or hashlib.sha256(route.data).hexdigest()}"')
            self.send_header("X-Linked-Size", str(len(route.data)))
            self.send_header("ETag", '"abc"')
        self.send_header("Content-Type", route.content_type)
        self.send_header("Content-Length", str(len(route.data)))
        self.end_headers()

    def do_GET(self):
        route = self._route()
        if route is None or route.mode == "404":
            body = b"not found"
            self.send_response(404)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if route.mode == "html":
            self.send_response(200)
            self.send_header("Content-Type", route.content_type)
            self.send_header("Content-Length", str(len(HTML)))
            self.end_headers()
            self.wfile.write(HTML)
            return
        data, start = route.data, 0
        rng = self.headers.get("Range")
        if rng and route.mode != "no_range":
            start = int(rng.split("=")[1].split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Type", route.content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        n_get = sum(r["method"] == "GET" for r in route.requests)
        if route.mode == "always_drop" or (route.mode == "drop_first" and n_get == 1):
            self.wfile.write(body[:route.cut])
            self.wfile.flush()
            self.close_connection = True
            return
        if route.mode == "slow":
            for i in range(0, len(body), 1024):
                try:
                    self.wfile.write(body[i:i + 1024])
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    return
                time.sleep(route.delay)
            return
        self.wfile.write(body)


class Server:
    def __init__(self):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.routes = {}
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def serve(self, path: str, data: bytes, **kw) -> Route:
        route = Route(data, **kw)
        self.httpd.routes[path] = route
        return route

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()
