"""The local nginx (with PAYGO_TLS=1): HTTPS with HSTS in front of the web app and the device API,
as in production (deploy/nginx/paygo.conf). It only terminates TLS and proxies to the two apps on
loopback; the apps believe X-Forwarded-For only from their trusted proxies (127.0.0.1)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from devtools.install import which
from devtools.process import StackError, alive, is_root, read_pid, run, wait_until
from devtools.server import Service
from devtools.tls import TlsFiles, tls_dir

HSTS = "max-age=31536000; includeSubDomains"


def site(listen: str, upstream: str, files: TlsFiles, server_name: str = "_") -> str:
    """One HTTPS server block: TLS 1.2+, HSTS on every answer, the client's address passed on."""
    return f"""
    server {{
        listen {listen} ssl;
        server_name {server_name};
        ssl_certificate {files.server_cert};
        ssl_certificate_key {files.server_key};
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:paygo_tls:10m;
        add_header Strict-Transport-Security "{HSTS}" always;
        client_max_body_size 2m;
        location / {{
            proxy_pass http://{upstream};
            proxy_http_version 1.1;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto https;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_read_timeout 60s;
        }}
    }}
"""


class Nginx(Service):
    name = "nginx"
    setting = "PAYGO_HTTPS_PORT"
    package = "nginx"

    @property
    def port(self) -> int:
        return self.settings.https_port

    def ports(self) -> list[tuple[int, str]]:
        return [(self.port, self.setting), (self.settings.device_https_port, "PAYGO_DEVICE_HTTPS_PORT")]

    @property
    def pid_file(self) -> Path:
        return self.dir / "nginx.pid"

    @property
    def conf_file(self) -> Path:
        return self.dir / "nginx.conf"

    def pid(self) -> int | None:
        return read_pid(self.pid_file)

    def running(self) -> bool:
        return alive(self.pid(), "nginx")

    def write_conf(self) -> None:
        files = TlsFiles(tls_dir(self.settings))
        if not files.ready():
            raise StackError(f"no certificates in {files.dir}: run 'paygo tls init'")
        temp = self.dir / "tmp"
        temp.mkdir(parents=True, exist_ok=True)
        s = self.settings
        self.conf_file.write_text(f"""# written by 'paygo stack up' (PAYGO_TLS=1)
{"user root root;" if is_root() else ""}
worker_processes 1;
pid {self.pid_file};
error_log {self.log_file} warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    server_tokens off;
{site(f"127.0.0.1:{s.https_port}", f"127.0.0.1:{s.api_port}", files)}
{site(f"127.0.0.1:{s.device_https_port}", f"127.0.0.1:{s.device_api_port}", files)}
}}
""")

    def _start(self) -> None:
        binary = which("nginx")
        if binary is None:
            raise StackError("nginx not found; run 'paygo stack up' as root with PAYGO_TLS=1 to install it")
        if self.pid_file.exists():
            self.pid_file.unlink()
        self.write_conf()
        try:  # -p: its own prefix, so that nothing of a system nginx (logs, pid) is touched
            run([binary, "-p", str(self.dir), "-c", str(self.conf_file), "-e", str(self.log_file)])
        except subprocess.CalledProcessError as err:
            tail = self.log_file.read_text()[-800:] if self.log_file.exists() else ""
            raise StackError(f"nginx did not start: {err.stderr.strip()} {tail}") from err
        wait_until(lambda: self.pid_file.exists(), "nginx pid file", timeout=15, log_file=self.log_file)
