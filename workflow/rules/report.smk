rule aggregate:
    input:
        metrics=metrics_files(),
        packed=aqconfig.packed_files(config),
    output:
        SUMMARY,
    conda:
        ENV
    log:
        f"{R}/logs/aggregate.log",
    benchmark:
        f"{R}/benchmarks/aggregate.tsv"
    threads: 1
    resources:
        mem_mb=resource("aggregate", "mem_mb", 1000),
        runtime=resource("aggregate", "runtime", 10),
    shell:
        "aqbench aggregate --out {output} --packed {input.packed} -- {input.metrics} 2> {log}"


rule tables:
    input:
        SUMMARY,
    output:
        expand(f"{P}/tables/{{name}}.{{ext}}", name=["results", "ptq"], ext=["md", "tex", "csv"]),
    conda:
        ENV
    log:
        f"{R}/logs/tables.log",
    benchmark:
        f"{R}/benchmarks/tables.tsv"
    threads: 1
    resources:
        mem_mb=resource("tables", "mem_mb", 1000),
        runtime=resource("tables", "runtime", 10),
    params:
        out_dir=lambda w, output: os.path.dirname(output[0]),
    shell:
        "aqbench tables --summary {input} --out-dir {params.out_dir} 2> {log}"


rule figures:
    input:
        summary=SUMMARY,
        spectra=SPECTRA,
        traces=TRACES,
    output:
        expand(f"{P}/figures/{{task}}_{{kind}}.{{ext}}", task=config["tasks"], ext=["png", "svg"], kind=FIGURES),
    params:
        out_dir=lambda w, output: os.path.dirname(output[0]),
    conda:
        ENV
    log:
        f"{R}/logs/figures.log",
    benchmark:
        f"{R}/benchmarks/figures.tsv"
    threads: 1
    resources:
        mem_mb=resource("figures", "mem_mb", 2000),
        runtime=resource("figures", "runtime", 10),
    shell:
        "aqbench figures --summary {input.summary} --spectrum {input.spectra} --trace {input.traces}"
        " --out-dir {params.out_dir} 2> {log}"


rule report:
    input:
        summary=SUMMARY,
        tables=rules.tables.output,
        figures=rules.figures.output,
    output:
        REPORT,
    params:
        settings=lambda w: aqconfig.as_json(config),
        figures_dir=lambda w, input: os.path.dirname(input.figures[0]),
    conda:
        ENV
    log:
        f"{R}/logs/report.log",
    benchmark:
        f"{R}/benchmarks/report.tsv"
    threads: 1
    resources:
        mem_mb=resource("report", "mem_mb", 1000),
        runtime=resource("report", "runtime", 10),
    shell:
        "aqbench report --summary {input.summary} --figures-dir {params.figures_dir} --out {output}"
        " --settings {params.settings:q} 2> {log}"
