"""The demo runs, shows its table, and exits cleanly."""

from __future__ import annotations

import http.client
import io
import re
import subprocess
import sys
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest

from hystrixpy import chaos
from hystrixpy.__main__ import main as cli_main
from hystrixpy.demo import _chaos_phase, _EventFeed, _summary, run_demo
from hystrixpy.demo import main as demo_main

_SEEDS = (1, 3, 7)
_SECONDS = 3.0  # the shortest run in which the payments circuit can open and close again
_SUMMARY_ROW = re.compile(
    r"^  (?P<command>\w+)\s+(?P<success>\d+)\s+(?P<failure>\d+)\s+(?P<timeout>\d+)"
    r"\s+(?P<rejected>\d+)\s+(?P<short_circuited>\d+)\s+(?P<fallback>\d+)\s+(?P<retries>\d+)"
    r"\s+(?P<circuit>.+)$",
    re.MULTILINE,
)
_CYCLE = re.compile(r"opened (\d+)x, half-open (\d+)x, closed again (\d+)x; ends (\w+)")


@dataclass
class _Run:
    """One demo run's output, and its summary rows by command."""

    text: str
    counts: dict[str, dict[str, int]]
    circuits: dict[str, str]


@pytest.fixture(scope="module", params=_SEEDS, ids=[f"seed{seed}" for seed in _SEEDS])
def demo_run(request: pytest.FixtureRequest) -> _Run:
    """The demo run once per seed, with the default number of callers; shared by the tests."""
    out = io.StringIO()
    assert run_demo(_SECONDS, 8, out, clear=False, seed=request.param, stream_port=None) == 0
    text = out.getvalue()
    summary = text[text.index("summary of the whole run:") :]
    counts: dict[str, dict[str, int]] = {}
    circuits: dict[str, str] = {}
    for match in _SUMMARY_ROW.finditer(summary):
        row = match.groupdict()
        command = row.pop("command")
        circuits[command] = row.pop("circuit")
        counts[command] = {name: int(value) for name, value in row.items()}
    assert set(counts) == {"GetProduct", "SearchProducts", "ChargeCard", "CheckStock"}, summary
    return _Run(text, counts, circuits)


class TestRunDemo:
    def test_every_tick_shows_every_column_and_a_summary(self, demo_run: _Run) -> None:
        """A table per second with every column and command, then the summary."""
        for heading in (
            "circuit",
            "req/s",
            "error %",
            "success",
            "timeout",
            "rejected",
            "short-circ",
            "fallback",
            "retries",
            "p50 ms",
            "p99 ms",
        ):
            assert heading in demo_run.text
        for command in ("GetProduct", "SearchProducts", "ChargeCard", "CheckStock"):
            assert command in demo_run.text
        assert demo_run.text.count("hystrixpy demo:") == round(_SECONDS)
        assert "\033[H\033[2J" not in demo_run.text

    def test_healthy_command_stays_healthy(self, demo_run: _Run) -> None:
        """GetProduct succeeds and its circuit never leaves CLOSED."""
        assert demo_run.counts["GetProduct"]["success"] > 0
        assert demo_run.circuits["GetProduct"] == "stayed CLOSED"

    def test_slow_command_times_out_and_saturates_its_pool(self, demo_run: _Run) -> None:
        """SearchProducts shows timeouts and thread-pool rejections, never short-circuits."""
        search = demo_run.counts["SearchProducts"]
        assert search["timeout"] > 0, demo_run.circuits
        assert search["rejected"] > 0, search
        assert search["timeout"] + search["rejected"] > search["success"], search
        assert search["short_circuited"] == 0, search
        assert demo_run.circuits["SearchProducts"] == "stayed CLOSED (forced closed)"
        live_states = re.findall(r"^SearchProducts\s+Search\s+(\w+)", demo_run.text, re.MULTILINE)
        assert live_states
        assert set(live_states) == {"CLOSED"}

    def test_flaky_command_opens_short_circuits_and_recovers(self, demo_run: _Run) -> None:
        """ChargeCard fails, its circuit opens and short-circuits, a trial closes it again."""
        charge = demo_run.counts["ChargeCard"]
        assert charge["failure"] > 0, charge
        assert charge["short_circuited"] > 0, charge
        cycle = _CYCLE.fullmatch(demo_run.circuits["ChargeCard"])
        assert cycle is not None, demo_run.circuits["ChargeCard"]
        opened, half_open, closed, final = cycle.groups()
        assert int(opened) >= 1
        assert int(half_open) >= 1
        assert int(closed) >= 1
        assert final == "CLOSED"

    def test_flaky_command_is_saved_by_its_retries(self, demo_run: _Run) -> None:
        """CheckStock retries dropped attempts, so nearly every call succeeds and none fails."""
        stock = demo_run.counts["CheckStock"]
        assert stock["retries"] > 0, stock
        assert stock["success"] > stock["retries"], stock
        assert stock["success"] > 10 * stock["failure"], stock
        assert demo_run.circuits["CheckStock"] == "stayed CLOSED"
        for name in ("GetProduct", "SearchProducts", "ChargeCard"):
            assert demo_run.counts[name]["retries"] == 0, name


class TestChaosDemo:
    def test_chaos_makes_the_healthy_command_fall_back(self) -> None:
        """--chaos says it is on, and GetProduct fails and falls back during its window only."""
        out = io.StringIO()
        assert run_demo(3.0, 4, out, clear=False, seed=5, stream_port=None, chaos=True) == 0
        text = out.getvalue()
        assert "chaos mode:" in text
        phases = re.findall(r"^chaos: (ON|off)", text, re.MULTILINE)
        assert phases == ["ON", "off", "off"]
        summary = text[text.index("summary of the whole run:") :]
        rows = {match["command"]: match.groupdict() for match in _SUMMARY_ROW.finditer(summary)}
        product = rows["GetProduct"]
        assert int(product["failure"]) + int(product["timeout"]) > 0, product
        assert int(product["fallback"]) > 0, product
        assert int(product["success"]) > int(product["fallback"]), product
        assert not chaos.enabled()
        assert chaos.settings("GetProduct") == chaos.FaultSettings()

    def test_chaos_is_on_inside_its_window_only(self) -> None:
        """Inside the window chaos is switched on once and stays on; after it, off."""
        assert _chaos_phase(0.1, 1) == "chaos: off\n"
        assert _chaos_phase(0.35, 1).startswith("chaos: ON")
        assert _chaos_phase(0.5, 1).startswith("chaos: ON")
        assert chaos.enabled()
        assert _chaos_phase(0.6, 1) == "chaos: off\n"
        assert not chaos.enabled()

    def test_the_command_line_passes_the_flag(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """`hystrixpy demo --chaos` runs the demo with chaos; without it, chaos stays off."""
        seen: list[bool] = []

        def fake_run_demo(*args: object, chaos: bool = False, **kwargs: object) -> int:
            seen.append(chaos)
            return 0

        monkeypatch.setattr("hystrixpy.demo.run_demo", fake_run_demo)
        assert demo_main(["--chaos", "--duration", "1"]) == 0
        assert demo_main(["--duration", "1"]) == 0
        assert seen == [True, False]


class TestSummary:
    def test_a_summary_before_any_call_shows_zeros(self) -> None:
        """The demo's commands are declared, so a summary before any call is all zeros."""
        text = _summary(_EventFeed(started=0.0))
        assert text.startswith("summary of the whole run:\n")
        rows = {match["command"]: match.groupdict() for match in _SUMMARY_ROW.finditer(text)}
        assert set(rows) == {"GetProduct", "SearchProducts", "ChargeCard", "CheckStock"}
        for row in rows.values():
            assert {row[name] for name in ("success", "timeout", "rejected")} == {"0"}
        assert rows["ChargeCard"]["circuit"] == "stayed CLOSED"


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
        """With stream_port None no stream line is printed; clear=True clears the screen."""
        out = io.StringIO()
        run_demo(1.0, 1, out, clear=True, seed=2, stream_port=None)
        assert "metrics stream:" not in out.getvalue()
        assert "\033[H\033[2J" in out.getvalue()


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
        assert "summary of the whole run:" in completed.stdout
