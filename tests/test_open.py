"""`coursekit open`: JupyterLab on the course, without the "get notified about Jupyter news" prompt.

JupyterLab asks every new user whether to fetch news while its `fetchNews` setting is "none" (its
default). coursekit ships a default of "false" (and no update checks) for the server it starts, as a
default only: a student's own setting still wins. The server is asked for the setting's default.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from conftest import copy_course

PLUGIN = "@jupyterlab/apputils-extension:notification"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_open_starts_jupyterlab_without_the_news_prompt(tmp_path):
    import jupyterlab

    course = copy_course(tmp_path / "course")
    schema = Path(sys.prefix) / "share" / "jupyter" / "lab" / "schemas" / "@jupyterlab" / "apputils-extension" / "notification.json"
    if schema.is_file():  # JupyterLab's own default is the one that asks
        assert json.loads(schema.read_text())["properties"]["fetchNews"]["default"] == "none"
    token, port = secrets.token_hex(8), _free_port()
    state = tmp_path / "jupyter"
    env = {**os.environ, "JUPYTER_TOKEN": token, "JUPYTER_CONFIG_DIR": str(state / "config"),
           "JUPYTER_RUNTIME_DIR": str(state / "runtime"), "JUPYTERLAB_SETTINGS_DIR": str(state / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(state / "workspaces"), "JUPYTER_PLATFORM_DIRS": "1"}
    log = open(tmp_path / "lab.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "coursekit.cli", "--root", str(course), "open", "--headless",
                             "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}/lab/api/settings/{PLUGIN}?token={token}"
        deadline, data = time.monotonic() + 120, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(url, timeout=5) as resp:
                    data = json.load(resp)
                break
            except OSError:
                time.sleep(0.5)
        assert data is not None, (tmp_path / "lab.log").read_text()[-3000:]
        defaults = {k: v.get("default") for k, v in data["schema"]["properties"].items()}
        assert defaults["fetchNews"] == "false" and defaults["checkForUpdates"] is False, (jupyterlab.__version__, defaults)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
