# Latency: one job per task and seed times every ONNX form of every run of the task (both models) against the
# task's FP32 ONNX model, in one process, holding every core it is given so that nothing runs beside it
# (aqbench latency; the models come from the export rules).
rule latency:
    input:
        checkpoint=CHECKPOINT.replace("{model}", "bert"),
        runs=latency_inputs,
    output:
        update(paths.fill(paths.LATENCY, results=R)),
    log:
        f"{R}/logs/latency/{{task}}/seed{{seed}}.log",
    benchmark:
        f"{R}/benchmarks/latency/{{task}}/seed{{seed}}.tsv"
    threads: LATENCY_THREADS
    resources:
        mem_mb=resource("latency", "mem_mb", 2000),
        runtime=resource("latency", "runtime", 30),
    params:
        **failure_params(paths.fill(paths.LATENCY, results=R)),
        code=code_version("latency"),
        runs=lambda w: [aqconfig.run_path(config, *run) for run in task_runs(w)],
        baseline=lambda w: aqconfig.run_path(config, w.task, registry.get("fp").model, "fp", "fp32", w.seed),
        settings=aqconfig.as_json(config["onnx"]["latency"]),
    shell:
        "aqbench latency --task {wildcards.task} --threads {threads} --checkpoint {input.checkpoint:q}"
        " --baseline {params.baseline:q} --settings {params.settings:q} --out {output:q} {params.runs:q} 2> {log:q}"
        " || failed {params.record:q}"
