rule aggregate:
    input:
        metrics=metrics_files(),
        packed=aqconfig.packed_files(config),
        onnx=aqconfig.onnx_files(config),
        latency=aqconfig.latency_files(config),
    output:
        summary=update(SUMMARY),
        provenance=update(f"{R}/provenance.json"),
    log:
        f"{R}/logs/aggregate.log",
    benchmark:
        f"{R}/benchmarks/aggregate.tsv"
    threads: 1
    resources:
        mem_mb=resource("aggregate", "mem_mb", 1000),
        runtime=resource("aggregate", "runtime", 10),
    params:
        **failure_params(SUMMARY),
        code=code_version("aggregate"),
    shell:
        "aqbench aggregate --out {output.summary:q} --packed {input.packed:q} --onnx {input.onnx:q}"
        " --latency {input.latency:q} -- {input.metrics:q} 2> {log:q} || failed {params.record:q}"


# Every comparison the winners table and the Pareto front make, tested on the runs' per-example outcomes.
rule paired_tests:
    input:
        summary=SUMMARY,
        outcomes=outcome_files(),
    output:
        update(PAIRED),
    log:
        f"{R}/logs/paired_tests.log",
    benchmark:
        f"{R}/benchmarks/paired_tests.tsv"
    threads: 1
    resources:
        mem_mb=resource("paired_tests", "mem_mb", 2000),
        runtime=resource("paired_tests", "runtime", 10),
    params:
        **failure_params(PAIRED),
        code=code_version("paired-tests"),
    shell:
        "aqbench paired-tests --summary {input.summary:q} --out {output:q} 2> {log:q} || failed {params.record:q}"


# The tables' CSVs, the figures' PNGs and the HTML page are also Snakemake report items (captions in
# workflow/report/), so `snakemake --report report.zip` packages them with the run's provenance.
rule tables:
    input:
        summary=SUMMARY,
        paired=PAIRED,
    output:
        [
            update(report(f"{P}/tables/{name}.csv", caption=f"../report/tables/{name}.rst", category="Tables"))
            for name in TABLE_NAMES
        ],
        update(expand(f"{P}/tables/{{name}}.{{ext}}", name=TABLE_NAMES, ext=["md", "tex"])),
    log:
        f"{R}/logs/tables.log",
    benchmark:
        f"{R}/benchmarks/tables.tsv"
    threads: 1
    resources:
        mem_mb=resource("tables", "mem_mb", 1000),
        runtime=resource("tables", "runtime", 10),
    params:
        **failure_params(f"{P}/tables/{TABLE_NAMES[0]}.csv"),
        code=code_version("tables"),
        out_dir=lambda w, output: os.path.dirname(output[0]),
        settings=aqconfig.as_json(aqconfig.report_settings(config)),
    shell:
        "aqbench tables --summary {input.summary:q} --paired {input.paired:q} --out-dir {params.out_dir:q}"
        " --settings {params.settings:q} 2> {log:q} || failed {params.record:q}"


rule figures:
    input:
        summary=SUMMARY,
        spectra=SPECTRA,
        traces=TRACES,
    output:
        [
            update(
                report(
                    f"{P}/figures/{t}_{kind}.png",
                    caption=f"../report/figures/{kind}.rst",
                    category="Figures",
                    subcategory=t,
                )
            )
            for t in config["tasks"]
            for kind in FIGURES
        ],
        update(expand(f"{P}/figures/{{task}}_{{kind}}.svg", task=config["tasks"], kind=FIGURES)),
    log:
        f"{R}/logs/figures.log",
    benchmark:
        f"{R}/benchmarks/figures.tsv"
    threads: 1
    resources:
        mem_mb=resource("figures", "mem_mb", 2000),
        runtime=resource("figures", "runtime", 10),
    params:
        **failure_params(f"{P}/figures/{config['tasks'][0]}_{FIGURES[0]}.png"),
        code=code_version("figures"),
        out_dir=lambda w, output: os.path.dirname(output[0]),
    shell:
        "aqbench figures --summary {input.summary:q} --spectrum {input.spectra:q} --trace {input.traces:q}"
        " --out-dir {params.out_dir:q} 2> {log:q} || failed {params.record:q}"


rule report:
    input:
        summary=SUMMARY,
        paired=PAIRED,
        tables=rules.tables.output,
        figures=rules.figures.output,
    output:
        update(report(REPORT, caption="../report/html.rst", category="Report")),
    log:
        f"{R}/logs/report.log",
    benchmark:
        f"{R}/benchmarks/report.tsv"
    threads: 1
    resources:
        mem_mb=resource("report", "mem_mb", 1000),
        runtime=resource("report", "runtime", 10),
    params:
        **failure_params(REPORT),
        code=code_version("report"),
        # the configuration the page shows; scheduler resources cannot change a result, so they do not rebuild it
        settings=lambda w: aqconfig.as_json({k: v for k, v in config.items() if k != "resources"}),
        figures_dir=lambda w, input: os.path.dirname(input.figures[0]),
    shell:
        "aqbench report --summary {input.summary:q} --paired {input.paired:q} --figures-dir {params.figures_dir:q}"
        " --out {output:q} --settings {params.settings:q} 2> {log:q} || failed {params.record:q}"
