"""The demo runs, shows its table, and exits cleanly."""

from __future__ import annotations

import http.client
import io
import re
import subprocess
import sys
import threading
from urllib.parse import urlsplit

import pytest

from hystrixpy.__main__ import main as cli_main
from hystrixpy.demo import main as demo_main
from hystrixpy.demo import run_demo


class TestRunDemo:
    def test_short_run_shows_every_column_and_a_summary(self) -> None:
        """A short run prints the table with each command and the summary, and returns 0."""
        out = io.StringIO()
        assert run_demo(2.0, 4, out, clear=False, seed=7) == 0
        text = out.getvalue()
        for heading in (
            "circuit",
            "req/s",
            "error %",
            "success",
            "timeout",
            "rejected",
            "short-circ",
            "fallback",
            "p50 ms",
            "p99 ms",
        ):
            assert heading in text
        for command in ("GetProduct", "SearchProducts", "ChargeCard"):
            assert command in text
        assert "summary:" in text
        assert text.count("hystrixpy demo:") == 2

    def test_payments_circuit_opens_and_closes_again(self) -> None:
        """Over a run the failing payments command opens its circuit, tries, and closes."""
        out = io.StringIO()
        run_demo(4.0, 6, out, clear=True, seed=3)
        text = out.getvalue()
        assert "\033[H\033[2J" in text
        assert "ChargeCard circuit went through: CLOSED, HALF_OPEN, OPEN" in text


class _Announcing(io.StringIO):
    """Collects the demo's output and signals once the stream's URL has been printed."""

    def __init__(self) -> None:
        super().__init__()
        self.url_printed = threading.Event()
        self.url = ""

    def write(self, text: str) -> int:
        match = re.search(r"metrics stream: (\S+)", text)
        if match and not self.url:
            self.url = match.group(1)
            self.url_printed.set()
        return super().write(text)


class TestDemoStream:
    def test_stream_serves_the_demo_commands_while_it_runs(self) -> None:
        """While the demo runs, its printed stream URL serves HystrixCommand messages."""
        out = _Announcing()
        demo = threading.Thread(
            target=run_demo, args=(3.0, 2, out), kwargs={"clear": False, "seed": 1}
        )
        demo.start()
        try:
            assert out.url_printed.wait(10)
            parts = urlsplit(out.url)
            assert parts.hostname == "127.0.0.1"
            connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
            connection.request("GET", parts.path)
            response = connection.getresponse()
            assert response.status == 200
            first = response.readline()
            assert first.startswith(b"data: {")
            assert b'"HystrixCommand"' in first
            connection.close()
        finally:
            demo.join(30)
        assert not demo.is_alive()

    def test_stream_can_be_turned_off(self) -> None:
        """With stream_port None no stream line is printed."""
        out = io.StringIO()
        run_demo(1.0, 1, out, clear=False, seed=2, stream_port=None)
        assert "metrics stream:" not in out.getvalue()


class TestCommandLine:
    def test_rejects_a_non_positive_duration(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--duration 0 is refused with a message naming the option."""
        with pytest.raises(SystemExit) as exit_info:
            demo_main(["--duration", "0"])
        assert exit_info.value.code == 2
        assert "--duration" in capsys.readouterr().err

    def test_rejects_zero_callers(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--callers 0 is refused with a message naming the option."""
        with pytest.raises(SystemExit):
            demo_main(["--callers", "0"])
        assert "--callers" in capsys.readouterr().err

    def test_rejects_a_bad_stream_port(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--stream-port outside -1..65535 is refused."""
        with pytest.raises(SystemExit):
            demo_main(["--stream-port", "70000"])
        assert "--stream-port" in capsys.readouterr().err

    def test_usage_and_unknown_command(self, capsys: pytest.CaptureFixture[str]) -> None:
        """No command prints usage (exit 2), --help prints it (exit 0), an unknown one fails."""
        assert cli_main([]) == 2
        assert cli_main(["--help"]) == 0
        assert "hystrixpy demo" in capsys.readouterr().out
        assert cli_main(["frobnicate"]) == 2
        assert "unknown command" in capsys.readouterr().err

    def test_python_dash_m_runs_the_demo(self) -> None:
        """`python -m hystrixpy demo` runs in a fresh interpreter and exits 0."""
        completed = subprocess.run(
            [sys.executable, "-m", "hystrixpy", "demo", "--duration", "1", "--no-clear"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert completed.returncode == 0, completed.stderr
        assert "summary:" in completed.stdout
