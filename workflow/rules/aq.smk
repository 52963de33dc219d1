# AQ-BERT: a search per task, model and budget (cached: the assignment, the architecture parameters and the
# trace), then quantization-aware fine-tuning with the searched assignment, evaluated. aq compresses bert,
# aq_distil the distilled student (models.distil); both search at the aq section's budgets.
SEARCH = paths.fill(paths.SEARCH, results=R)


rule aq_search:
    input:
        checkpoint=CHECKPOINT,
        data=DATA,
    output:
        assignment=update(f"{SEARCH}/assignment.json"),
        trace=update(paths.fill(paths.TRACE, results=R)),
        alpha=update(f"{SEARCH}/alpha.safetensors"),
    log:
        paths.fill(paths.SEARCH_LOG, results=R),
    benchmark:
        f"{R}/benchmarks/aq_search/{{task}}/{{model}}/{{budget}}/seed{{seed}}.tsv"
    threads: config["threads"]["train"]
    resources:
        mem_mb=resource("aq_search", "mem_mb", 4000),
        runtime=resource("aq_search", "runtime", 60),
        gpu=resource("aq_search", "gpu", 0),
    params:
        **failure_params(f"{SEARCH}/assignment.json"),
        code=code_version("search"),
        settings=lambda w: aqconfig.as_json(aqconfig.search_settings(config, w.task)),
        out=lambda w, output: os.path.dirname(output.assignment),
    shell:
        "aqbench search --task {wildcards.task} --budget {wildcards.budget} --seed {wildcards.seed} --threads {threads}"
        " --checkpoint {input.checkpoint:q} --data {input.data:q} --settings {params.settings:q}"
        " --out {params.out:q} 2> {log:q} || failed {params.record:q}"


rule aq:
    input:
        checkpoint=CHECKPOINT,
        data=DATA,
        assignment=rules.aq_search.output.assignment,
    output:
        assignment=update(f"{RUN}/assignment.json"),
        state=update(f"{RUN}/state.safetensors"),
        info=update(f"{RUN}/method.json"),
        metrics=update(f"{RUN}/metrics.json"),
        outcomes=update(f"{RUN}/outcomes.npz"),
    log:
        paths.fill(paths.AQ_LOG, results=R),
    benchmark:
        f"{R}/benchmarks/aq/{JOB}.tsv"
    wildcard_constraints:
        method="|".join(registry.names(kind=registry.SEARCH)),
    threads: config["threads"]["train"]
    resources:
        mem_mb=resource("aq", "mem_mb", 4000),
        runtime=resource("aq", "runtime", 60),
        gpu=resource("aq", "gpu", 0),
    params:
        **failure_params(f"{RUN}/assignment.json"),
        code=code_version("quantize"),
        settings=lambda w: aqconfig.as_json(aqconfig.method_settings(config, w.method, w.task)),
        eval_settings=settings("train"),
        out=lambda w, output: os.path.dirname(output.assignment),
    shell:
        "aqbench quantize --method {wildcards.method} --task {wildcards.task} --model {wildcards.model}"
        " --budget {wildcards.budget} --seed {wildcards.seed} --threads {threads} --checkpoint {input.checkpoint:q}"
        " --data {input.data:q} --settings {params.settings:q} --input=assignment={input.assignment:q}"
        " --out {params.out:q} --evaluate {output.metrics:q} --eval-settings {params.eval_settings:q} 2> {log:q}"
        " || failed {params.record:q}"
