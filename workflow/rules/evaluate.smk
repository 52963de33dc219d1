rule evaluate:
    input:
        checkpoint=CHECKPOINT,
        data=DATA,
        assignment=f"{RUN}/assignment.json",
        state=f"{RUN}/state.safetensors",
        info=f"{RUN}/method.json",
    output:
        f"{RUN}/metrics.json",
    params:
        settings=settings("train"),
    log:
        f"{R}/logs/evaluate/{JOB}.log",
    benchmark:
        f"{R}/benchmarks/evaluate/{JOB}.tsv"
    threads: config["threads"]["evaluate"]
    resources:
        mem_mb=resource("evaluate", "mem_mb", 2000),
        runtime=resource("evaluate", "runtime", 20),
        gpu=resource("evaluate", "gpu", 0),
    shell:
        "aqbench evaluate --task {wildcards.task} --model {wildcards.model} --method {wildcards.method}"
        " --budget {wildcards.budget} --seed {wildcards.seed} --threads {threads} --checkpoint {input.checkpoint}"
        " --run $(dirname {input.assignment}) --data {input.data} --settings {params.settings:q} --out {output} 2> {log}"
