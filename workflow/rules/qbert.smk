# Q-BERT: the Hessian spectrum per task (cached), then one quantization-aware fine-tuning job per budget:
# w<b> = every block at b bits, b<avg bits> = Hessian-ranked mixed precision. Each job evaluates its run.
# qbert_gptq: the same mixed-precision assignments rounded by GPTQ instead of QAT.
SPECTRUM = paths.fill(paths.SPECTRUM, results=R)
QBERT_RUN = paths.fill(paths.RUN, results=R)


rule hessian:
    input:
        checkpoint=CHECKPOINT,
        data=DATA,
    output:
        update(SPECTRUM),
    log:
        f"{R}/logs/hessian/{{task}}/{{model}}/seed{{seed}}.log",
    benchmark:
        f"{R}/benchmarks/hessian/{{task}}/{{model}}/seed{{seed}}.tsv"
    threads: config["threads"]["train"]
    resources:
        mem_mb=resource("hessian", "mem_mb", 4000),
        runtime=resource("hessian", "runtime", 60),
        gpu=resource("hessian", "gpu", 0),
    params:
        **failure_params(SPECTRUM),
        code=code_version("hessian"),
        settings=lambda w: aqconfig.as_json(
            {"hessian": config["hessian"], "train": result_train(aqconfig.stage_settings(config, "train", w.task))}
        ),
    shell:
        "aqbench hessian --task {wildcards.task} --seed {wildcards.seed} --threads {threads}"
        " --checkpoint {input.checkpoint:q} --data {input.data:q} --settings {params.settings:q} --out {output:q}"
        " 2> {log:q} || failed {params.record:q}"


rule qbert:
    input:
        checkpoint=CHECKPOINT,
        data=DATA,
        spectrum=spectrum_input,
    output:
        assignment=update(f"{QBERT_RUN}/assignment.json"),
        state=update(f"{QBERT_RUN}/state.safetensors"),
        info=update(f"{QBERT_RUN}/method.json"),
        metrics=update(f"{QBERT_RUN}/metrics.json"),
        outcomes=update(f"{QBERT_RUN}/outcomes.npz"),
    log:
        paths.fill(paths.QBERT_LOG, results=R),
    benchmark:
        f"{R}/benchmarks/{{method}}/{{task}}/{{model}}/{{budget}}/seed{{seed}}.tsv"
    wildcard_constraints:
        method="|".join(registry.names(kind=registry.QBERT)),
    threads: config["threads"]["train"]
    resources:
        mem_mb=resource("qbert", "mem_mb", 4000),
        runtime=resource("qbert", "runtime", 60),
        gpu=resource("qbert", "gpu", 0),
    params:
        **failure_params(f"{QBERT_RUN}/assignment.json"),
        code=code_version("quantize"),
        settings=lambda w: aqconfig.as_json(aqconfig.method_settings(config, w.method, w.task)),
        eval_settings=settings("train"),
        spectrum=lambda w, input: q(f"--input=spectrum={input.spectrum}") if input.spectrum else "",
        out=lambda w, output: os.path.dirname(output.assignment),
    shell:
        "aqbench quantize --method {wildcards.method} --task {wildcards.task} --model {wildcards.model} --budget {wildcards.budget}"
        " --seed {wildcards.seed} --threads {threads} --checkpoint {input.checkpoint:q} --data {input.data:q}"
        " --settings {params.settings:q} {params.spectrum} --out {params.out:q}"
        " --evaluate {output.metrics:q} --eval-settings {params.eval_settings:q} 2> {log:q} || failed {params.record:q}"
