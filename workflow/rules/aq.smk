# AQ-BERT: a search per task, model and budget (cached: the assignment, the architecture parameters and the
# trace), then quantization-aware fine-tuning with the searched assignment, evaluated. aq compresses bert,
# aq_distil the distilled student (models.distil); both search at the aq section's budgets.
# With aq.tune, each combination of its values is one search (a trial); aq_tune keeps the one whose searched
# model scores best on the tuning split. Without it there is one trial, "default".
SEARCH = paths.fill(paths.SEARCH, results=R)
TRIAL = paths.fill(paths.SEARCH_TRIAL, results=R)
TRIALS = [name for name, _ in aqconfig.search_trials(config)]


rule aq_search:
    input:
        checkpoint=CHECKPOINT,
        data=DATA,
    output:
        assignment=update(f"{TRIAL}/assignment.json"),
        trace=update(f"{TRIAL}/trace.json"),
        alpha=update(f"{TRIAL}/alpha.safetensors"),
    log:
        paths.fill(paths.SEARCH_TRIAL_LOG, results=R),
    benchmark:
        f"{R}/benchmarks/aq_search/{{task}}/{{model}}/{{budget}}/seed{{seed}}/{{trial}}.tsv"
    wildcard_constraints:
        trial="|".join(re.escape(t) for t in TRIALS),
    threads: config["threads"]["train"]
    resources:
        mem_mb=resource("aq_search", "mem_mb", 4000),
        runtime=resource("aq_search", "runtime", 60),
        gpu=resource("aq_search", "gpu", 0),
    params:
        **failure_params(f"{SEARCH}/assignment.json"),
        code=code_version("search"),
        settings=lambda w: aqconfig.as_json(aqconfig.trial_settings(config, w.task, w.trial)),
        out=lambda w, output: os.path.dirname(output.assignment),
    shell:
        "aqbench search --task {wildcards.task} --budget {wildcards.budget} --seed {wildcards.seed} --threads {threads}"
        " --checkpoint {input.checkpoint:q} --data {input.data:q} --settings {params.settings:q}"
        " --out {params.out:q} 2> {log:q} || failed {params.record:q}"


rule aq_tune:
    input:
        trials=expand(f"{TRIAL}/trace.json", trial=TRIALS, allow_missing=True),
        assignments=expand(f"{TRIAL}/assignment.json", trial=TRIALS, allow_missing=True),
        alphas=expand(f"{TRIAL}/alpha.safetensors", trial=TRIALS, allow_missing=True),
    output:
        assignment=update(f"{SEARCH}/assignment.json"),
        trace=update(paths.fill(paths.TRACE, results=R)),
        alpha=update(f"{SEARCH}/alpha.safetensors"),
    log:
        paths.fill(paths.SEARCH_LOG, results=R),
    benchmark:
        f"{R}/benchmarks/aq_tune/{{task}}/{{model}}/{{budget}}/seed{{seed}}.tsv"
    threads: 1
    resources:
        mem_mb=resource("aq_tune", "mem_mb", 1000),
        runtime=resource("aq_tune", "runtime", 10),
    params:
        **failure_params(f"{SEARCH}/assignment.json"),
        code=code_version("choose-search"),
        out=lambda w, output: os.path.dirname(output.assignment),
        trials=lambda w, input: [os.path.dirname(t) for t in input.trials],
    shell:
        "aqbench choose-search --out {params.out:q} {params.trials:q} 2> {log:q} || failed {params.record:q}"


rule aq:
    input:
        checkpoint=CHECKPOINT,
        data=DATA,
        assignment=rules.aq_tune.output.assignment,
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
