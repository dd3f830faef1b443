"""The `bpinn` command line (run, check, summary, report, calibrate, identify, design, ntk,
methods).

Exit status 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1  # the input was valid but the computation failed (e.g. MAP diverged)
EXIT_WARNINGS = 3  # bpinn run --strict: results written, but the run has warnings
EXIT_INTERRUPTED = 130  # the shell's code for Ctrl-C


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bpinn",
        description="Bayesian inverse problems with physics-informed neural networks.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="infer the unknowns a config describes")
    run.add_argument("config", type=Path, nargs="?", help="TOML config file")
    run.add_argument("--from", dest="from_results", type=Path, default=None, metavar="RESULTS",
                     help="rerun the config recorded in RESULTS (a posterior.nc or its "
                          "directory) instead of reading CONFIG")
    run.add_argument("-o", "--outdir", type=Path, default=None,
                     help="output directory (default: results/<config folder name>)")
    run.add_argument("--seed", type=int, default=None, help="override [inference] seed")
    run.add_argument("--method", default=None,
                     help="override [inference] method (`bpinn methods` lists them)")
    run.add_argument("--num-warmup", type=int, default=None)
    run.add_argument("--num-samples", type=int, default=None)
    run.add_argument("--num-chains", type=int, default=None)
    run.add_argument("--overwrite", action="store_true",
                     help="replace the results in an existing OUTDIR")
    run.add_argument("--resume", action="store_true",
                     help="continue the interrupted run whose checkpoint is in OUTDIR")
    run.add_argument("--strict", action="store_true",
                     help=f"exit with status {EXIT_WARNINGS} when the run has convergence "
                          "warnings (for pipelines)")
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    run.add_argument("--no-report", action="store_true",
                     help="skip OUTDIR/report.html (write it later with bpinn report)")

    summ = sub.add_parser("summary", help="print the summary table of a results file")
    summ.add_argument("results", type=Path, help="posterior.nc (or its directory)")
    summ.add_argument("--json", action="store_true", help="print summary as JSON")

    cal = sub.add_parser("calibrate", help="coverage and SBC ranks over simulated datasets")
    cal.add_argument("config", type=Path, help="TOML config file (its PDE needs a reference "
                     "solver to simulate data)")
    cal.add_argument("--datasets", type=int, required=True, help="number of datasets N")
    cal.add_argument("--method", default=None, help="inference method (default: the config's)")
    cal.add_argument("--truth", choices=("prior", "fixed"), default="prior",
                     help="draw true values from the priors, or use the config's [truth]")
    cal.add_argument("--with-reference", action="store_true",
                     help="also run the reference inversion on each dataset, for bias and sd "
                     "relative to the gold standard")
    cal.add_argument("--jobs", type=int, default=1, help="datasets run in parallel processes")
    cal.add_argument("--seed", type=int, default=0)
    cal.add_argument("--num-warmup", type=int, default=None)
    cal.add_argument("--num-samples", type=int, default=None)
    cal.add_argument("--num-chains", type=int, default=None)
    cal.add_argument("-o", "--outdir", type=Path, default=None,
                     help="output directory (default: results/calibration_<config folder>)")
    cal.add_argument("--overwrite", action="store_true")
    cal.add_argument("--resume", action="store_true",
                     help="reuse the datasets an interrupted calibration in OUTDIR finished")
    cal.add_argument("--shard", type=_shard, default=None, metavar="K/M",
                     help="run only datasets i with i %% M == K into OUTDIR's checkpoint, no "
                     "summary: split one calibration over machines (copy the checkpoint "
                     "folders together, then run once more with --resume and no --shard)")
    cal.add_argument("--quiet", action="store_true", help="no progress bar")

    rep = sub.add_parser("report", help="write the self-contained HTML report of a run, or a "
                         "comparison of several")
    rep.add_argument("results", type=Path, nargs="+",
                     help="posterior.nc (or its directory); several: a side-by-side comparison")
    rep.add_argument("-o", "--output", type=Path, default=None,
                     help="HTML file (default: report.html beside posterior.nc; "
                     "comparison.html for several)")

    ident = sub.add_parser("identify", help="what the data determine and what they leave open")
    ident.add_argument("results", type=Path, help="posterior.nc (or its directory)")
    ident.add_argument("--json", action="store_true", help="print the diagnostics as JSON")

    sub.add_parser("methods", help="list the inference methods and what each cannot show")

    design = sub.add_parser("design", help="rank new sensor locations by expected information")
    design.add_argument("results", type=Path, help="posterior.nc (or its directory)")
    design.add_argument("--top", type=int, default=10, help="how many locations to list")
    design.add_argument("--noise-sd", type=float, default=None,
                        help="noise sd of the new reading (default: the posterior mean of sigma)")
    design.add_argument("--json", action="store_true", help="print the ranking as JSON")

    check = sub.add_parser("check", help="validate a config and its data files without running")
    check.add_argument("config", type=Path, help="TOML config file")

    ntk = sub.add_parser("ntk", help="NTK spectra of the loss terms: which terms gradient "
                         "descent fits first, and the weights or sds that would balance them")
    ntk.add_argument("config", type=Path, help="TOML config file")
    ntk.add_argument("-o", "--outdir", type=Path, default=None,
                     help="output directory for ntk.json and ntk.png "
                          "(default: results/ntk_<config folder name>)")
    ntk.add_argument("--points", type=int, default=64, metavar="N",
                     help="at most this many evenly spaced points per loss term (default 64)")
    ntk.add_argument("--no-map", action="store_true",
                     help="only the first chain's initialisation: skip the MAP fit")
    ntk.add_argument("--overwrite", action="store_true",
                     help="replace ntk.json and ntk.png in an existing OUTDIR")
    ntk.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def _error(msg: str) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return EXIT_BAD_INPUT


def _shard(text: str) -> tuple[int, int]:
    """``"K/M"`` -> (K, M), for ``calibrate --shard``."""
    try:
        k, m = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected K/M (shard K of M, counted from 0), e.g. 0/4; got {text!r}") from None
    from bpinn.calibration import check_shard

    try:
        check_shard((k, m))
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return k, m


def _check_outdir(outdir: Path, overwrite: bool, resume: bool = False,
                  finished: str = "posterior.nc") -> str | None:
    from bpinn.checkpoint import CHECKPOINT_DIRNAME

    if outdir.exists() and not outdir.is_dir():
        return f"{outdir} exists and is not a directory"
    if overwrite and resume:
        return "--overwrite and --resume contradict each other: choose one"
    has_checkpoint = (outdir / CHECKPOINT_DIRNAME).is_dir()
    if resume:
        if (outdir / finished).is_file() and not has_checkpoint:
            return f"{outdir} holds a finished run; there is nothing to resume"
        return None
    if outdir.is_dir() and any(outdir.iterdir()) and not overwrite:
        if has_checkpoint:
            return (f"{outdir} holds the checkpoint of an interrupted run; pass --resume to "
                    "continue it or --overwrite to start again")
        return (f"{outdir} already holds results; pass --overwrite to replace them or choose "
                "another -o OUTDIR")
    return None


def _cmd_run(args) -> int:
    from bpinn.utils import configure_jax, interrupt_handling

    configure_jax()
    from bpinn.checkpoint import CHECKPOINT_DIRNAME

    if args.from_results is not None and args.outdir is None:
        return _error("--from needs -o OUTDIR for the rerun's results")
    outdir = args.outdir or Path("results") / args.config.resolve().parent.name
    problem = _check_outdir(outdir, args.overwrite, args.resume)
    if problem:
        return _error(problem)
    checkpoint_dir = outdir / CHECKPOINT_DIRNAME
    if args.overwrite:
        shutil.rmtree(checkpoint_dir, ignore_errors=True)  # a stale run's state, not results
    elif args.resume and not checkpoint_dir.is_dir():
        print(f"note: no checkpoint in {outdir}; starting the run from the beginning",
              file=sys.stderr)
    created = not outdir.exists()
    overrides = {"num_warmup": args.num_warmup, "num_samples": args.num_samples,
                 "num_chains": args.num_chains}
    with interrupt_handling():
        return _run_and_write(args, outdir, checkpoint_dir, created, overrides)


def _run_and_write(args, outdir: Path, checkpoint_dir: Path, created: bool, overrides: dict
                   ) -> int:
    from bpinn.api import MAPError, rerun, run
    from bpinn.checkpoint import CheckpointError
    from bpinn.config import ConfigError
    from bpinn.data import DataError
    from bpinn.diagnostics import format_identifiability
    from bpinn.inference.results import format_summary, write_results
    from bpinn.utils import check_interrupt

    source = args.config if args.config is not None else f"--from {args.from_results}"
    try:
        # Results are computed in memory and written only at the end, so a failure leaves
        # the previous results in OUTDIR as they were; the checkpoint beside them lets an
        # interrupted run continue where it stopped.
        if args.from_results is not None:
            result = rerun(args.from_results, overrides={**overrides, "seed": args.seed,
                                                         "method": args.method},
                           progress=not args.quiet, checkpoint_dir=checkpoint_dir)
        else:
            result = run(args.config, outdir=None, seed=args.seed, method=args.method,
                         overrides=overrides, progress=not args.quiet,
                         checkpoint_dir=checkpoint_dir)
        check_interrupt()  # a Ctrl-C that library code swallowed still stops the run
    except (ConfigError, DataError, CheckpointError) as err:
        return _error(str(err))
    except MAPError as err:
        # A resumed run would replay the same divergence: its checkpoint is of no use.
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
        if created and outdir.is_dir() and not any(outdir.iterdir()):
            outdir.rmdir()
        print(f"error: {args.config or args.from_results}: {err}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        if checkpoint_dir.is_dir():
            print(f"\ninterrupted: the run's state up to its last finished chunk is saved in "
                  f"{checkpoint_dir}; continue with\n  bpinn run {source} -o {outdir} "
                  "--resume", file=sys.stderr)
        else:
            print("\ninterrupted before the first checkpoint: nothing was written",
                  file=sys.stderr)
        return EXIT_INTERRUPTED
    try:
        outdir.mkdir(parents=True, exist_ok=True)
        paths = write_results(outdir, result.datatree, result.summary)
    except OSError as err:
        if checkpoint_dir.is_dir():  # keep it: the finished run's draws are in there
            return _error(f"cannot write results to {outdir}: {err}; once fixed, rerun with "
                          "--resume to write them without sampling again")
        if created:
            shutil.rmtree(outdir, ignore_errors=True)
        return _error(f"cannot write results to {outdir}: {err}")
    shutil.rmtree(checkpoint_dir, ignore_errors=True)  # the results now hold everything
    print(format_summary(result.summary))
    print(format_identifiability(result.summary["identifiability"]))
    print(f"\nwrote {paths['posterior']} and {paths['summary']}")
    if not args.no_report:
        import matplotlib

        matplotlib.use("Agg")
        from bpinn.report import write_report

        try:
            print(f"wrote {write_report(outdir)}")
        except Exception as err:  # the results are safe on disk; the report can be redone
            print(f"warning: the report could not be written ({err}); the results are saved, "
                  f"retry with `bpinn report {outdir}`", file=sys.stderr)
    warnings = result.summary["diagnostics"]["warnings"]
    if args.strict and warnings:
        print(f"--strict: {len(warnings)} warning(s) (listed above); exit status "
              f"{EXIT_WARNINGS}", file=sys.stderr)
        return EXIT_WARNINGS
    return 0


def _cmd_summary(args) -> int:
    """Recompute the summary from posterior.nc (the record), with timings from summary.json."""
    from bpinn.config import InferenceSettings
    from bpinn.inference.results import decode_attrs, format_summary, summarize

    dt, nc = _read_results_arg(args.results)
    if dt is None:
        return _error(nc)
    attrs = decode_attrs(dt)
    saved_path = nc.parent / "summary.json"
    saved = json.loads(saved_path.read_text()) if saved_path.is_file() else {}
    timing = saved.get("timing") or {}
    config = attrs.get("config") or {}
    summary = summarize(
        dt,
        var_names=[v for v in dt["posterior"].data_vars if v not in ("weights",)],
        method=str(attrs.get("method", "unknown")),
        seed=int(attrs.get("seed", -1)),
        timing={k: v for k, v in timing.items() if v is not None},
        truth=config.get("truth") or None,
        max_tree_depth=(config.get("inference") or {}).get(
            "max_tree_depth", InferenceSettings.max_tree_depth),
    )
    # What the .nc cannot recompute (run provenance, MAP fits and their warnings) comes from the
    # summary.json written beside it.
    for key, value in saved.items():
        summary.setdefault(key, value)
    extra_warnings = [w for w in (saved.get("diagnostics") or {}).get("warnings", [])
                      if w.startswith("MAP fits") or "is an approximation" in w]
    summary["diagnostics"]["warnings"].extend(extra_warnings)
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    return 0


def _read_results_arg(path: Path):
    """(DataTree, path of posterior.nc) or (None, error message)."""
    from bpinn.inference.results import read_results

    nc = path / "posterior.nc" if path.is_dir() else path
    if not nc.is_file():
        return None, f"{nc}: no such file; give the posterior.nc written by bpinn run"
    try:
        return read_results(nc), nc
    except Exception as err:  # any reader failure means "not a results file"
        return None, f"{nc}: cannot be read as a bpinn results file: {err}"


def _cmd_report(args) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from bpinn.report import write_comparison_report, write_report

    try:
        if len(args.results) > 1:
            path = write_comparison_report(args.results, args.output)
        else:
            path = write_report(args.results[0], args.output)
    except (FileNotFoundError, ValueError) as err:
        return _error(str(err))
    print(f"wrote {path}")
    return 0


def _cmd_identify(args) -> int:
    from bpinn.diagnostics import format_identifiability, identify

    dt, nc = _read_results_arg(args.results)
    if dt is None:
        return _error(nc)
    try:
        report = identify(dt)
    except ValueError as err:
        return _error(f"{nc}: {err}")
    print(json.dumps(report, indent=2) if args.json else format_identifiability(report))
    return 0


def _cmd_calibrate(args) -> int:
    from bpinn.calibration import calibrate, plot_calibration
    from bpinn.config import ConfigError
    from bpinn.utils import atomic_write_bytes, check_interrupt, interrupt_handling

    outdir = args.outdir or Path("results") / f"calibration_{args.config.resolve().parent.name}"
    if args.shard is not None and args.overwrite:
        return _error("--shard adds to OUTDIR's checkpoint; --overwrite would delete what other "
                      "shards saved there")
    problem = _check_outdir(outdir, args.overwrite, args.resume or args.shard is not None,
                            finished="calibration.json")
    if problem:
        return _error(problem)
    from bpinn.checkpoint import CHECKPOINT_DIRNAME

    checkpoint_dir = outdir / CHECKPOINT_DIRNAME
    if args.overwrite:
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
    overrides = {"num_warmup": args.num_warmup, "num_samples": args.num_samples,
                 "num_chains": args.num_chains}
    try:
        with interrupt_handling():
            result = calibrate(args.config, num_datasets=args.datasets, method=args.method,
                               truth=args.truth, seed=args.seed, jobs=args.jobs,
                               with_reference=args.with_reference, overrides=overrides,
                               progress=not args.quiet, checkpoint_dir=checkpoint_dir,
                               shard=args.shard)
            check_interrupt()
    except ConfigError as err:
        return _error(str(err))
    except KeyboardInterrupt:
        print(f"\ninterrupted: the finished datasets are saved in {checkpoint_dir}; continue "
              f"with the same command and --resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    if args.shard is not None:
        k, m = args.shard
        print(f"shard {k}/{m}: {len(result['datasets'])} datasets saved in {checkpoint_dir} "
              f"({result['wall_s']:.0f} s); when every shard has run, merge the checkpoint "
              "folders and summarise with the same command, --resume and no --shard")
        return 0
    outdir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(outdir / "calibration.json", json.dumps(result, indent=2).encode())
    plot_calibration(result, outdir / "calibration.png")
    shutil.rmtree(checkpoint_dir, ignore_errors=True)

    def coverage(entry):
        return ", ".join(f"{lvl}: {c:.2f} (band {b[0]:.2f}-{b[1]:.2f})" for (lvl, c), b in
                         zip(entry["coverage"].items(), entry["band"].values(), strict=True))

    for name, entry in result["parameters"].items():
        sbc = f"; SBC p = {entry['sbc']['p_value']:.3g}" if "sbc" in entry else ""
        print(f"{name}: coverage {coverage(entry)}{sbc}; mean bias {entry['mean_bias']:.3g}")
        for label, group in entry.get("coverage_within", {}).items():
            n = group["num_datasets"]
            print(f"  {label} ({n} datasets): " + (coverage(group) if n else "none"))
    print(f"wrote {outdir / 'calibration.json'} and {outdir / 'calibration.png'} "
          f"({result['wall_s']:.0f} s)")
    return 0


def _cmd_design(args) -> int:
    from bpinn.diagnostics import format_sensor_design, sensor_design

    dt, nc = _read_results_arg(args.results)
    if dt is None:
        return _error(nc)
    if args.top < 1:
        return _error(f"--top must be at least 1, got {args.top}")
    try:
        design = sensor_design(dt, top=args.top, noise_sd=args.noise_sd)
    except ValueError as err:
        return _error(f"{nc}: {err}")
    print(json.dumps(design, indent=2) if args.json else format_sensor_design(design))
    return 0


def _cmd_check(args) -> int:
    """Everything ``bpinn run`` validates before it computes anything, and nothing more."""
    from bpinn.utils import configure_jax

    configure_jax()
    from bpinn.api import checked_method, prepare
    from bpinn.config import ConfigError, load_config
    from bpinn.data import DataError

    try:
        config = load_config(args.config)
        model = prepare(config)
    except (ConfigError, DataError) as err:
        return _error(str(err))
    try:
        checked_method(model, config.inference)
    except ValueError as err:  # the method cannot run this problem
        return _error(f"{args.config}: [inference] method = {config.inference.method!r}: {err}")
    p = model.problem
    obs = p.observations
    print(f"{args.config}: ok")
    print(f"  equation      {p.pde.equation}")
    if p.pde.is_system:
        read = ", ".join(f"{g} ({int((obs.group_index == i).sum())} readings)"
                         for i, g in enumerate(obs.group_names))
        print(f"  outputs       {', '.join(p.pde.outputs)}; {p.pde.num_equations} equations; "
              f"read: {read}")
        scales = model.settings.equation_scales
        if scales is not None:
            print("  residual sds  residual_noise x ("
                  + ", ".join(f"{v:g}" for v in scales) + "), equation by equation")
    fields = [f"{n} ({p.coefficients[n].describe()})" for n in model.field_coefficients]
    print(f"  unknowns      {', '.join([*model.reported_sites, *fields])}")
    for i, cond in enumerate(p.conditions):
        if cond.unknown is not None:
            where = "" if cond.kind in ("initial", "initial_rate") else f" on {cond.boundary}"
            print(f"  unknown value {cond.unknown} is the value of [[conditions]][{i}] "
                  f"({cond.kind}{where})")
    print(f"  observations  {obs.values.shape[0]} readings in {len(obs.group_names)} group(s) "
          f"from {obs.origin}")
    for readings in p.field_data:
        of = f"log {readings.field}" if readings.log else readings.field
        print(f"  field data    {readings.observations.n} readings of {of} from "
              f"{readings.observations.origin}")
    print(f"  network       {model.num_weights} weights; "
          f"{int(model.collocation.shape[0])} collocation points")
    print(f"  method        {config.inference.method}")
    return 0


def _cmd_ntk(args) -> int:
    """NTK spectra of the loss terms at the first chain's start and at the best MAP fit."""
    from bpinn.utils import configure_jax

    configure_jax()
    from bpinn.api import MAPError, method_context, prepare, run_keys
    from bpinn.config import ConfigError, load_config
    from bpinn.data import DataError
    from bpinn.ntk import format_ntk_report, ntk_report, plot_ntk
    from bpinn.utils import atomic_write_bytes

    if args.points < 1:
        return _error(f"--points must be at least 1, got {args.points}")
    outdir = args.outdir or Path("results") / f"ntk_{args.config.resolve().parent.name}"
    problem = _check_outdir(outdir, args.overwrite, finished="ntk.json")
    if problem:
        return _error(problem)
    try:
        config = load_config(args.config)
        model = prepare(config)
    except (ConfigError, DataError) as err:
        return _error(str(err))
    settings = config.inference
    keys = run_keys(settings.seed)  # `bpinn run`'s: the start and the MAP are the run's own
    try:
        ctx = method_context(model, settings, keys.target, keys.init, needs_map=not args.no_map,
                             progress=not args.quiet)
    except MAPError as err:
        print(f"error: {args.config}: {err}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("\ninterrupted: nothing was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    positions = {"initialisation": ctx.starts[0]}
    if not args.no_map:
        positions["MAP"] = ctx.best_map()
    try:
        report = ntk_report(model, ctx.target, positions, max_points=args.points)
    except ValueError as err:  # a likelihood the diagnostic cannot whiten
        return _error(f"{args.config}: {err}")
    print(format_ntk_report(report))
    try:
        outdir.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(outdir / "ntk.json", json.dumps(report.to_dict(), indent=2).encode())
        plot_ntk(report, outdir / "ntk.png")
    except OSError as err:
        return _error(f"cannot write to {outdir}: {err}")
    print(f"\nwrote {outdir / 'ntk.json'} and {outdir / 'ntk.png'}")
    return 0


def _cmd_methods(args) -> int:
    from bpinn.inference.methods import get_method, method_names

    for name in method_names():
        m = get_method(name)
        kind = "exact MCMC" if m.exact_mcmc else "approximation"
        print(f"{name:<16} {kind:<14} {m.description}")
        for limitation in m.limitations:
            print(f"{'':<31}- {limitation}")
    return 0


def main(argv=None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "run" and (args.config is None) == (args.from_results is None):
        parser.error("bpinn run needs either a CONFIG file or --from RESULTS (not both)")
    commands = {"run": _cmd_run, "summary": _cmd_summary, "report": _cmd_report,
                "identify": _cmd_identify, "calibrate": _cmd_calibrate, "methods": _cmd_methods,
                "check": _cmd_check, "design": _cmd_design, "ntk": _cmd_ntk}
    return commands[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
