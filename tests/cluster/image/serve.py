"""Answer every GET with the pod's name: the tests see which pod a Service reached."""

import http.server
import os
import socket


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"{socket.gethostname()}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


http.server.ThreadingHTTPServer(("", int(os.environ.get("PORT", "8080"))), Handler).serve_forever()
