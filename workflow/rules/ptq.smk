# Methods that turn the FP checkpoint into a run without training: fp (nothing to quantize) and lq.
rule ptq:
    input:
        checkpoint=CHECKPOINT,
        data=DATA,
    output:
        assignment=f"{RUN}/assignment.json",
        state=f"{RUN}/state.safetensors",
        info=f"{RUN}/method.json",
    params:
        settings=lambda w: aqconfig.as_json(aqconfig.method_settings(config, w.method, w.task)),
    log:
        f"{R}/logs/ptq/{JOB}.log",
    benchmark:
        f"{R}/benchmarks/ptq/{JOB}.tsv"
    threads: config["threads"]["evaluate"]
    resources:
        mem_mb=resource("ptq", "mem_mb", 2000),
        runtime=resource("ptq", "runtime", 20),
        gpu=resource("ptq", "gpu", 0),
    shell:
        "aqbench quantize --method {wildcards.method} --task {wildcards.task} --budget {wildcards.budget}"
        " --seed {wildcards.seed} --threads {threads} --checkpoint {input.checkpoint} --data {input.data}"
        " --settings {params.settings:q} --out $(dirname {output.assignment}) 2> {log}"
