"""The `kpkt` command: parses arguments, calls the library, prints. Nothing else lives here.

Exit status: 0 done, 2 the input is wrong (one line per problem, no traceback), 3 (`run`) a
step did not end as its `expect:` says, 4 (`sweep`) some runs failed, 1 anything else (a short
message; --debug shows the traceback), 130 and 143 stopped by Ctrl-C (SIGINT) or SIGTERM. A
reader that stops early (`| head`) ends the output quietly.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import sys
import traceback
from pathlib import Path

import click

from kpkt import __version__
from kpkt.dns.serve import DEFAULT_LISTEN, DEFAULT_PORT, SERVE_LIMITS, serve_topology
from kpkt.errors import KpktError
from kpkt.flowcache import FLOW_CACHE_DEFAULT
from kpkt.importer.sources import load_cluster
from kpkt.progress import Progress
from kpkt.report import describe_topology, misses, open_hint, step_tables
from kpkt.topology.examples import example_named, find_topology, shipped
from kpkt.topology.limits import DEFAULT_MAX_PACKETS
from kpkt.topology.load import load_topology

RUN_EXAMPLE = """\b
Exit status: 0 done (every `expect:` met), 1 internal error, 2 bad input
(nothing written), 3 written, but a step did not end as its `expect:` says
(each such step is printed last), 130/143 stopped by Ctrl-C/SIGTERM (the
output folder is left as it was).

\b
The output folder: a new one is created; an existing one is replaced only
if kpkt wrote it (it holds .kpkt-output.json) and only the files that run
wrote are removed. A folder holding anything else is refused (exit 2) unless
--force, which keeps those files beside the new output. -o may not be the
current folder, the topology's folder or $HOME, nor above them.

\b
Example:
  kpkt run topologies/two-node.yaml
  kpkt run two-node -o /tmp/two-node        # the shipped example of that name
  wireshark -d udp.port==8472,vxlan pcaps/two-node/node1__eth0.pcap
  kpkt run --quiet tests/ci/expectations.yaml -o out   # in CI: exit 3 on a miss
"""
EXPECTATION_MISSED = 3
REPORT_WRITTEN = "all.pcapng, manifest.json and report.html"
JSON_HELP = "Print a JSON document instead of text (schema: kpkt/schemas/, docs/json.md)."


def _file_option(help_text: str):
    """`-o FILE`: where a command that prints a text writes it instead."""
    return click.option(
        "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help=help_text
    )


def _print_or_write(text: str, output: Path | None) -> None:
    """Print `text`, or write it to `output` (a file that cannot be written is the user's
    problem: exit 2)."""
    if output is None:
        _echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as error:
        raise KpktError(f"{output}: cannot write it: {error.strerror}") from None


@click.group(
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Exit status: 0 done, 1 internal error, 2 bad input, 3 a step's expectation missed, "
    "4 some runs of a sweep failed, 130 Ctrl-C, 143 SIGTERM.",
)
@click.version_option(__version__, prog_name="kpkt")
def main() -> None:
    """kpkt: emulate Kubernetes pod networking packet by packet, one pcap per hop.

    TOPOLOGY is a YAML file, or the name of an example shipped with kpkt (`kpkt examples`
    lists them)."""


def entry() -> None:
    """The `kpkt` command (and `python -m kpkt`): `main`, then the process ends as Python would
    end it, but for freeing what the command built. A run's network is millions of objects in
    reference cycles (a namespace and its devices name each other); at exit Python's collector
    would walk them all and free them one by one (1.0 to 1.4 s after a 10,000-pod run, on top
    of its 9 s), while the operating system takes a process's memory back at once. Standard
    output and error are flushed and the exit handlers run first, as at any exit."""
    try:
        main()
        status = 0
    except SystemExit as done:
        status = _exit_status(done.code)
    try:
        sys.stdout.flush()
    except BrokenPipeError:  # its reader went away: what is left goes nowhere, as in _guarded
        _reader_gone()
    sys.stderr.flush()
    atexit._run_exitfuncs()
    os._exit(status)


def _exit_status(code: object) -> int:
    """The exit status of `sys.exit(code)`, as Python makes it: None is 0, a number itself, and
    anything else is printed to standard error, status 1."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


@main.command(epilog=RUN_EXAMPLE)
@click.argument("topology", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),  # checked by the run: one `error:` line, exit 2
    help="Output folder (default: pcaps/<metadata.name>/). The files a previous kpkt run "
    "wrote there are replaced as a whole; see below.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Write into an output folder that holds files kpkt did not write (they are kept).",
)
@click.option("--seed", type=click.IntRange(min=0), help="Override the topology's seed.")
@click.option(
    "--max-packets",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_PACKETS,
    show_default=True,
    help="Stop with exit status 2, writing nothing, if the captures would hold more frames "
    "in total (each hop of a packet is a frame).",
)
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.option(
    "-q", "--quiet", is_flag=True, help="Print only where the output went and missed expectations."
)
@click.option("--no-report", is_flag=True, help="Do not write report.html.")
@click.option(
    "--flow-cache/--no-flow-cache",
    default=FLOW_CACHE_DEFAULT,
    show_default=True,
    help="Replay the recorded path of a flow's first packet for the packets after it (the "
    "output is the same byte for byte; see the README's Flow cache).",
)
@click.option("--debug", is_flag=True, help="Show the traceback of an internal error.")
def run(
    topology: tuple[Path, ...],
    output: Path | None,
    force: bool,
    seed: int | None,
    max_packets: int,
    as_json: bool,
    quiet: bool,
    no_report: bool,
    flow_cache: bool,
    debug: bool,
) -> None:
    """Build the cluster, run its traffic, write one pcap per capture point, manifest.json and
    report.html (a page that draws the cluster and each step's path).
    Each step's outcome (delivered, partial, refused, unreachable, not-found, dropped, timeout)
    is printed, and judged against the step's `expect:` when it has one.

    TOPOLOGY may also be kubectl dumps (files or folders) with an overlay file: see
    `kpkt import`."""
    from kpkt import api
    from kpkt.documents import run_document

    def job() -> None:
        topo = load_cluster(list(topology), seed)
        _warn(topo.warnings)
        folder = output or Path("pcaps") / topo.name
        progress = Progress(len(topo.steps)) if Progress.wanted() else None
        try:
            result = api.run(
                topo,
                folder,
                progress=progress,
                force=force,
                max_frames=max_packets,
                report=not no_report,
                flow_cache=flow_cache,
            )
        finally:
            if progress is not None:
                progress.finish()
        missed = misses(result)
        status = EXPECTATION_MISSED if missed else 0
        if as_json:
            _echo(json.dumps(run_document(result, status), indent=2))
        else:
            if not quiet:
                _echo(step_tables(result))
            written = "all.pcapng and manifest.json" if no_report else REPORT_WRITTEN
            _echo(f"wrote {len(result.files)} captures, {written} to {folder}/")
            hint = open_hint(result)
            if hint and not quiet:
                _echo(hint)
            if missed:
                _echo(f"{len(missed)} step(s) did not end as expected:")
                for line in missed:
                    _echo(line)
        if status:
            sys.exit(status)

    _guarded_stoppable(job, debug, "the output folder is left as it was")


IMPORT_EXAMPLE = """\b
Example, against your own cluster:
  kubectl get nodes,pods,services,endpointslices,networkpolicies,namespaces -A -o yaml > dump.yaml
  kpkt import dump.yaml -o cluster.yaml
  kpkt run dump.yaml extras.yaml     # or: the dumps with an overlay, imported on the fly
"""


@main.command("import", epilog=IMPORT_EXAMPLE)
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@_file_option("Write the topology here (default: standard output); nothing is written on error.")
@click.option("--cni", help="The CNI to model (`cluster.cni`), whatever the objects show.")
def import_(files: tuple[Path, ...], output: Path | None, cni: str | None) -> None:
    """Turn Kubernetes objects, as `kubectl get ... -o yaml` (or `-o json`) prints them, into a
    kpkt topology. FILES are dumps or folders of them, with at most one overlay (`kind:
    Overlay`: traffic, externals, what objects do not say). What kpkt leaves out is printed,
    one line per reason with a count, and kept in the file's header."""
    from kpkt.importer.command import import_command

    _guarded(lambda: import_command(list(files), output, cni, _echo), debug=False)


REPORT_EXAMPLE = """\b
Example:
  kpkt report pcaps/two-node && xdg-open pcaps/two-node/report.html
"""


@main.command(epilog=REPORT_EXAMPLE)
@click.argument("outdir", type=click.Path(path_type=Path))
@click.option("--debug", is_flag=True, help="Show the traceback of an internal error.")
def report(outdir: Path, debug: bool) -> None:
    """Write OUTDIR/report.html again from the output folder of a run (its manifest.json and
    captures): the cluster as a picture, each step's path and hops, each frame's fields."""
    from kpkt.html_report import write_report

    def job() -> None:
        _echo(f"wrote {write_report(outdir)}")

    _guarded(job, debug)


@main.command(epilog="\b\nExample:\n  kpkt validate topologies/two-node.yaml")
@click.argument("topology", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--seed", type=click.IntRange(min=0), help="Override the topology's seed.")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.option("--debug", is_flag=True, help="Show the traceback of an internal error.")
def validate(topology: Path, seed: int | None, as_json: bool, debug: bool) -> None:
    """Check a topology file and print what it would build: nodes, pods, addresses, MACs,
    routes, services with their ports and endpoints, the names the cluster DNS serves, and
    the traffic steps with their expectations."""
    from kpkt.documents import validate_document

    def job() -> None:
        topo = _load(topology, seed)
        if as_json:
            _echo(json.dumps(validate_document(topo), indent=2))
        else:
            _echo(describe_topology(topo))

    _guarded(job, debug)


@main.command(epilog="\b\nExample:\n  kpkt gen 200 50 -o big.yaml && kpkt run big.yaml")
@click.argument("nodes", type=int)
@click.argument("pods", type=int)
@_file_option("Write the topology here (default: standard output).")
@click.option("--no-traffic", is_flag=True, help="Leave out the ping per pod.")
def gen(nodes: int, pods: int, output: Path | None, no_traffic: bool) -> None:
    """Generate a topology of NODES nodes with PODS pods each, and one cross-node ping per pod
    (each pod pings its namesake on the next node)."""
    from kpkt.gen import generate

    def job() -> None:
        _print_or_write(generate(nodes, pods, ping=not no_traffic), output)

    _guarded(job, debug=False)


@main.command(epilog="\b\nExample:\n  kpkt trace topologies/two-node.yaml 2")
@click.argument("topology", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("step", type=int)
@click.option("--seed", type=click.IntRange(min=0), help="Override the topology's seed.")
@click.option(
    "--colour/--no-colour",
    "--color/--no-color",
    default=None,
    help="Colour the output (default: when standard output is a terminal).",
)
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.option("--debug", is_flag=True, help="Show the traceback of an internal error.")
def trace(
    topology: Path, step: int, seed: int | None, colour: bool | None, as_json: bool, debug: bool
) -> None:
    """Show the path of traffic step STEP (1 is the first) hop by hop: time, capture point,
    direction, packet, and what changed there, ending with the result and any drops."""
    from kpkt.documents import trace_document
    from kpkt.trace import run_step, trace_lines

    def job() -> None:
        topo = _load(topology, seed)
        traced = run_step(topo, step)
        if as_json:
            _echo(json.dumps(trace_document(topo, traced), indent=2))
            return
        paint = sys.stdout.isatty() if colour is None else colour
        for line in trace_lines(traced, colour=paint):
            _echo(line, color=paint)

    _guarded(job, debug)


REACH_EXAMPLE = """\b
Example:
  kpkt reach netpol.yaml                       # pods x pods, every served port
  kpkt reach netpol.yaml --from x/a --port 80/TCP --json
  kpkt reach netpol.yaml --diff with-new-policy.yaml
  kpkt reach netpol.yaml -o pcaps/reach        # captures of every probe
"""


@main.command(epilog=REACH_EXAMPLE)
@click.argument("topology", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--from",
    "froms",
    multiple=True,
    help="A client (ns/pod, node/<name>, an "
    "external host's name); repeat for more. Default: every pod.",
)
@click.option(
    "--to",
    "tos",
    multiple=True,
    help="A server (ns/pod, service/<ns>/<name>, "
    "node/<name>, an external host); repeat for more. Default: every pod.",
)
@click.option(
    "--port",
    "ports",
    multiple=True,
    help="Only this port and protocol (80/TCP, "
    "53/UDP, or 80 for both); repeat for more. Default: what each server serves.",
)
@click.option(
    "--diff",
    "other",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Probe OTHER too and print only the cells whose verdict changes.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    help="Write the probes' captures, all.pcapng and manifest.json to this folder, as a run "
    "writes them (one step per probe, in the order of --json).",
)
@click.option("--seed", type=click.IntRange(min=0), help="Override the topology's seed.")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.option("--debug", is_flag=True, help="Show the traceback of an internal error.")
def reach(
    topology: Path,
    froms: tuple[str, ...],
    tos: tuple[str, ...],
    ports: tuple[str, ...],
    other: Path | None,
    output: Path | None,
    seed: int | None,
    as_json: bool,
    debug: bool,
) -> None:
    """Probe who can reach whom on the wire, as the upstream NetworkPolicy e2e tests do (one
    agnhost-style connection attempt per client, server, port and protocol), and print a truth
    table per port and protocol: rows from, columns to, `.` allowed, `X` denied."""
    from kpkt import reach as matrix

    def job() -> None:
        topo = _load(topology, seed)
        probes = matrix.reach(topo, matrix.probe_steps(topo, froms, tos, ports), output)
        if other is not None:
            theirs = _load(other, seed)
            steps = matrix.probe_steps(theirs, froms, tos, ports)
            changed = matrix.changes(probes, matrix.reach(theirs, steps))
            if as_json:
                _echo(json.dumps({"changes": changed}, indent=2))
            else:
                _echo(matrix.change_lines(changed), nl=False)
        elif as_json:
            _echo(json.dumps({"probes": probes}, indent=2))
        else:
            _echo(matrix.tables(probes), nl=False)

    _guarded_stoppable(job, debug, "the output folder is left as it was")


DIFF_EXAMPLE = """\b
Example:
  kpkt diff tests/golden/two-node/expected pcaps/two-node --ignore ip.id --ignore ip.chksum
  kpkt diff old/node1__eth0.pcap new/node1__eth0.pcap --ignore inner.ip.ttl --no-times
  kpkt diff --json expected/ actual/ > diff.json
"""


@main.command(epilog=DIFF_EXAMPLE)
@click.argument("a", type=click.Path(path_type=Path))
@click.argument("b", type=click.Path(path_type=Path))
@click.option(
    "--ignore",
    "ignore",
    multiple=True,
    metavar="FIELD",
    help="Leave out a field, matched case-insensitively by name or by its end at a dot "
    "(ip.id: IP.id and inner.IP.id; inner.ip.id: only the inner; frame.time: timestamps). "
    "Repeatable.",
)
@click.option("--no-times", is_flag=True, help="Do not compare timestamps.")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="Differences shown per capture; the rest are counted.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the whole report as JSON (kpkt/schemas/diff.schema.json; --limit does not apply).",
)
@click.option("--debug", is_flag=True, help="Show the traceback of an internal error.")
def diff(
    a: Path,
    b: Path,
    ignore: tuple[str, ...],
    no_times: bool,
    limit: int,
    as_json: bool,
    debug: bool,
) -> None:
    """Compare two pcap files, or two output folders capture by capture (their *.pcap files,
    matched by name; all.pcapng holds the same frames and is not read), frame by frame and field
    by field. Frames are lined up first: a frame
    only one side has is reported as such. Exit status 0 identical, 1 different, 2 bad input
    (a missing, corrupt or truncated file: the error names the file and the byte offset)."""
    from kpkt.capture.diff import compare_paths, parse_ignore

    def job() -> None:
        report = compare_paths(a, b, parse_ignore(ignore), times=not no_times, limit=limit)
        if as_json:
            _echo(json.dumps(report.to_json(), indent=2))
        else:
            for line in report.lines:
                _echo(line)
            _echo(report.summary)
        if not report.same:
            sys.exit(1)

    _guarded(job, debug)


SWEEP_EXAMPLE = """\b
Exit status: 0 every run done, 1 internal error, 2 bad input, 4 the tables are
written but some runs failed (their status and error columns say why), 130/143
stopped by Ctrl-C/SIGTERM (the runs done are kept: the same command resumes).

\b
Example:
  kpkt sweep cni-seeds.yaml -o sweeps/cni-seeds --jobs 2
  kpkt sweep cni-seeds.yaml -o /shared/cni-seeds --dask tcp://scheduler:8786
"""
RUNS_FAILED = 4


@main.command(epilog=SWEEP_EXAMPLE)
@click.argument("sweep_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The sweep folder (runs/, summary.csv, summary.jsonl, plots); running into it again "
    "skips the runs it has finished.",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    help="Runs at a time on this machine (default: its cores), or --dask local's workers.",
)
@click.option(
    "--dask",
    metavar="tcp://HOST:PORT|local",
    help="Run on the Dask cluster with this scheduler (`local`: a LocalCluster here).",
)
@click.option(
    "--collect",
    is_flag=True,
    help="Workers send each run's files back here (no shared file system needed).",
)
@click.option(
    "--max-packets",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_PACKETS,
    show_default=True,
    help="A run whose captures would hold more frames in total fails (as with kpkt run).",
)
@click.option("--debug", is_flag=True, help="Show the traceback of an internal error.")
def sweep(
    sweep_file: Path,
    output: Path,
    jobs: int | None,
    dask: str | None,
    collect: bool,
    max_packets: int,
    debug: bool,
) -> None:
    """Expand SWEEP_FILE (docs/sweep.md) into runs, run each in a worker process, and write one
    summary table with a row per run (summary.csv and summary.jsonl in the sweep folder)."""
    from kpkt.sweep.executors import DaskExecutor, LocalExecutor, cores
    from kpkt.sweep.progress import SweepProgress
    from kpkt.sweep.run import run_sweep
    from kpkt.sweep.sweepfile import load_sweep

    def job() -> None:
        plan = load_sweep(sweep_file)
        workers = jobs or cores()
        executor = DaskExecutor(dask, workers) if dask else LocalExecutor(workers)
        progress = SweepProgress(len(plan.runs), 0) if SweepProgress.wanted() else None
        try:
            result = run_sweep(plan, output, executor, collect, max_packets, progress)
        finally:
            if progress is not None:
                progress.finish()
        _echo(
            f"{len(result.rows)} runs: {result.ran} ran, {result.skipped} already done, "
            f"{result.failed} failed; wrote {', '.join(path.name for path in result.files)} "
            f"to {output}/"
        )
        if result.failed:
            sys.exit(RUNS_FAILED)

    _guarded_stoppable(job, debug, "the runs done are kept; run the same command to resume")


@main.group("dns")
def dns_group() -> None:
    """Cluster DNS: CoreDNS as the emulator runs it."""


DNS_SERVE_EXAMPLE = f"""\b
Example:
  kpkt dns serve tests/dns/cluster.yaml
  dig @127.0.0.1 -p {DEFAULT_PORT} web.default.svc.cluster.local

{SERVE_LIMITS}"""


@dns_group.command("serve", epilog=DNS_SERVE_EXAMPLE)
@click.argument("topology", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--listen",
    default=DEFAULT_LISTEN,
    show_default=True,
    metavar="HOST:PORT",
    help="Where to answer, over UDP and TCP (port 0: a free one, printed).",
)
@click.option("--debug", is_flag=True, help="Show the traceback of an internal error.")
def dns_serve(topology: Path, listen: str, debug: bool) -> None:
    """Answer DNS queries as the topology's CoreDNS would (kubeadm's Corefile), on real UDP and
    TCP sockets. Names outside the cluster go to the upstream server of cluster.dns.upstream,
    modelled in the same process. Ctrl-C stops."""

    def job() -> None:
        topo = _load(topology)
        serve_topology(topo, listen, echo=click.echo)

    _guarded(job, debug)


def _echo(text: str, **options) -> None:
    """Print to standard output; once the reader has gone (`| head`), the rest goes nowhere,
    quietly, and the command still ends with its own exit status."""
    try:
        click.echo(text, **options)
    except BrokenPipeError:
        _reader_gone()


def _reader_gone() -> None:
    """Send what is left of standard output to /dev/null: nothing more to tell a closed pipe,
    and no error when Python flushes it at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


EXAMPLES_EXAMPLE = """\b
Example:
  kpkt examples
  kpkt examples two-node -o my-cluster.yaml && kpkt run my-cluster.yaml
"""


@main.command(epilog=EXAMPLES_EXAMPLE)
@click.argument("name", required=False)
@_file_option("Copy example NAME to this file (default: print it).")
def examples(name: str | None, output: Path | None) -> None:
    """List the example topologies shipped with kpkt, or print example NAME (or copy it out with
    -o). Every command that takes a TOPOLOGY also takes a shipped example's name."""
    if name is None and output is not None:
        raise click.UsageError("-o needs the NAME of the example to copy")

    def job() -> None:
        if name is None:
            listed = shipped()
            width = max(len(example.name) for example in listed)
            for example in listed:
                _echo(f"{example.name:<{width}}  {example.description}")
            return
        _print_or_write(example_named(name).path.read_text(encoding="utf-8"), output)

    _guarded(job, debug=False)


def _load(topology: Path, seed: int | None = None):
    """The topology a TOPOLOGY argument names (a file, or a shipped example's name), its
    warnings printed."""
    topo = load_topology(find_topology(topology), seed=seed)
    _warn(topo.warnings)
    return topo


def _warn(warnings) -> None:
    for line in warnings:
        click.echo(f"warning: {line}", err=True)


class Terminated(BaseException):
    """SIGTERM, raised like Ctrl-C's KeyboardInterrupt so that the same clean-up runs."""


def _terminate(signum, frame) -> None:
    raise Terminated


def _guarded_stoppable(job, debug: bool, stopped: str) -> None:
    """_guarded, with SIGTERM stopping the job as Ctrl-C does; `stopped` says what is left."""
    before = signal.signal(signal.SIGTERM, _terminate)
    try:
        _guarded(job, debug, stopped)
    finally:
        signal.signal(signal.SIGTERM, before)


def _guarded(job, debug: bool, stopped: str = "") -> None:
    """Run a command's job: its problems and interruptions as one line and an exit status."""
    try:
        job()
    except (KeyboardInterrupt, Terminated) as stop:
        name, status = ("SIGTERM", 143) if isinstance(stop, Terminated) else ("Ctrl-C", 130)
        click.echo(f"kpkt: stopped by {name}" + (f"; {stopped}" if stopped else ""), err=True)
        sys.exit(status)
    except BrokenPipeError:  # a command printing with click.echo: its reader went away
        _reader_gone()
    except KpktError as error:
        for line in error.problems:
            click.echo(f"error: {line}", err=True)
        sys.exit(2)
    except Exception as error:  # an internal error: short, unless --debug
        if debug:
            traceback.print_exc()
        else:
            click.echo(
                f"kpkt: internal error: {type(error).__name__}: {error} "
                "(run with --debug for the traceback)",
                err=True,
            )
        sys.exit(1)
