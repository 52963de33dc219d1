# Post-training methods: the FP checkpoint becomes a run without training, and the same job evaluates it
# (one process per run: most of a short job is importing torch and transformers). fp is the no-op method.
rule ptq:
    input:
        checkpoint=CHECKPOINT,
        data=DATA,
    output:
        assignment=f"{RUN}/assignment.json",
        state=f"{RUN}/state.safetensors",
        info=f"{RUN}/method.json",
        metrics=f"{RUN}/metrics.json",
    params:
        settings=lambda w: aqconfig.as_json(aqconfig.method_settings(config, w.method, w.task)),
        eval_settings=settings("train"),
    log:
        f"{R}/logs/ptq/{JOB}.log",
    benchmark:
        f"{R}/benchmarks/ptq/{JOB}.tsv"
    threads: config["threads"]["evaluate"]
    resources:
        mem_mb=resource("ptq", "mem_mb", 2000),
        runtime=resource("ptq", "runtime", 20),
    shell:
        "aqbench quantize --method {wildcards.method} --task {wildcards.task} --model {wildcards.model}"
        " --budget {wildcards.budget} --seed {wildcards.seed} --threads {threads} --checkpoint {input.checkpoint}"
        " --data {input.data} --settings {params.settings:q} --out $(dirname {output.assignment})"
        " --evaluate {output.metrics} --eval-settings {params.eval_settings:q} 2> {log}"
