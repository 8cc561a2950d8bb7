"""The `kpkt` command: parses arguments, calls the library, prints. Nothing else lives here.

Exit status: 0 done, 2 the input is wrong (one line per problem, no traceback), 1 anything else
(a short message; --debug shows the traceback).
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

import click

from kpkt import __version__
from kpkt.errors import KpktError
from kpkt.progress import Progress
from kpkt.report import describe_topology, step_tables
from kpkt.topology.examples import example_named, find_topology, shipped
from kpkt.topology.load import load_topology

RUN_EXAMPLE = """\b
Example:
  kpkt run topologies/two-node.yaml
  kpkt run two-node -o /tmp/two-node        # the shipped example of that name
  wireshark -d udp.port==8472,vxlan pcaps/two-node/node1__eth0.pcap
"""


def _file_option(help_text: str):
    """`-o FILE`: where a command that prints a text writes it instead."""
    return click.option(
        "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help=help_text
    )


def _print_or_write(text: str, output: Path | None) -> None:
    """Print `text`, or write it to `output` (a file that cannot be written is the user's
    problem: exit 2)."""
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as error:
        raise KpktError(f"{output}: cannot write it: {error.strerror}") from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kpkt")
def main() -> None:
    """kpkt: emulate Kubernetes pod networking packet by packet, one pcap per hop.

    TOPOLOGY is a YAML file, or the name of an example shipped with kpkt (`kpkt examples`
    lists them)."""


@main.command(epilog=RUN_EXAMPLE)
@click.argument("topology", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder (default: pcaps/<metadata.name>/). Replaced as a whole.",
)
@click.option("--seed", type=click.IntRange(min=0), help="Override the topology's seed.")
@click.option("--debug", is_flag=True, help="Show the traceback of an internal error.")
def run(topology: Path, output: Path | None, seed: int | None, debug: bool) -> None:
    """Build the cluster, run its traffic, write one pcap per capture point and manifest.json."""
    from kpkt.output import run_to_folder

    def job() -> None:
        topo = _load(topology, seed)
        folder = output or Path("pcaps") / topo.name
        progress = Progress(len(topo.steps)) if Progress.wanted() else None
        try:
            result = run_to_folder(topo, folder, progress)
        finally:
            if progress is not None:
                progress.finish()
        click.echo(step_tables(result))
        click.echo(f"wrote {len(result.files)} captures, all.pcapng and manifest.json to {folder}/")
        click.echo(
            f"open one: wireshark -d udp.port=={topo.cluster.vxlan_port},vxlan "
            f"{folder}/{topo.nodes[0].name}__eth0.pcap"
        )

    _guarded(job, debug)


@main.command(epilog="\b\nExample:\n  kpkt validate topologies/two-node.yaml")
@click.argument("topology", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--seed", type=click.IntRange(min=0), help="Override the topology's seed.")
@click.option("--debug", is_flag=True, help="Show the traceback of an internal error.")
def validate(topology: Path, seed: int | None, debug: bool) -> None:
    """Check a topology file and print what it would build: nodes, pods, addresses, MACs,
    routes and the traffic steps."""

    def job() -> None:
        topo = _load(topology, seed)
        click.echo(describe_topology(topo))

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
@click.option("--debug", is_flag=True, help="Show the traceback of an internal error.")
def trace(topology: Path, step: int, seed: int | None, colour: bool | None, debug: bool) -> None:
    """Show the path of traffic step STEP (1 is the first) hop by hop: time, capture point,
    direction, packet, and what changed there, ending with the result and any drops."""
    from kpkt.trace import trace as trace_step

    def job() -> None:
        topo = _load(topology, seed)
        paint = sys.stdout.isatty() if colour is None else colour
        for line in trace_step(topo, step, colour=paint):
            click.echo(line, color=paint)

    _guarded(job, debug)


DIFF_EXAMPLE = """\b
Example:
  kpkt diff tests/golden/two-node/expected pcaps/two-node --ignore ip.id --ignore ip.chksum
  kpkt diff old/node1__eth0.pcap new/node1__eth0.pcap --ignore inner.ip.ttl --no-times
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
@click.option("--debug", is_flag=True, help="Show the traceback of an internal error.")
def diff(
    a: Path, b: Path, ignore: tuple[str, ...], no_times: bool, limit: int, debug: bool
) -> None:
    """Compare two captures, or two output folders capture by capture (matched by file name),
    frame by frame and field by field. Exit status 0 identical, 1 different, 2 bad input."""
    from kpkt.capture.diff import compare_paths, parse_ignore

    def job() -> None:
        report = compare_paths(a, b, parse_ignore(ignore), times=not no_times, limit=limit)
        for line in report.lines:
            click.echo(line)
        click.echo(report.summary)
        if not report.same:
            sys.exit(1)

    _guarded(job, debug)


@main.group("dns")
def dns_group() -> None:
    """Cluster DNS: CoreDNS as the emulator runs it."""


DNS_SERVE_EXAMPLE = """\b
Example:
  kpkt dns serve tests/dns/cluster.yaml
  dig @127.0.0.1 -p 5353 web.default.svc.cluster.local
"""


@dns_group.command("serve", epilog=DNS_SERVE_EXAMPLE)
@click.argument("topology", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--listen",
    default="127.0.0.1:5353",
    show_default=True,
    metavar="HOST:PORT",
    help="Where to answer, over UDP and TCP (port 0: a free one, printed).",
)
@click.option("--debug", is_flag=True, help="Show the traceback of an internal error.")
def dns_serve(topology: Path, listen: str, debug: bool) -> None:
    """Answer DNS queries as the topology's CoreDNS would (kubeadm's Corefile), on real UDP and
    TCP sockets. Names outside the cluster go to the upstream server of cluster.dns.upstream,
    modelled in the same process. Ctrl-C stops."""
    from kpkt.dns.serve import serve_topology

    def job() -> None:
        topo = _load(topology)
        serve_topology(topo, listen, echo=click.echo)

    _guarded(job, debug)


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
                click.echo(f"{example.name:<{width}}  {example.description}")
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


def _guarded(job, debug: bool) -> None:
    try:
        job()
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
