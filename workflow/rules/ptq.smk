# Post-training methods (fp is the no-op one): one job per task, model, method and seed runs the method's
# whole sweep of budgets and evaluates each run, in one process. Most of a short job is importing torch and
# transformers, and a scheduler should not see dozens of seconds-long jobs. Each run is still its own
# directory with its own files; the budgets come from the config (aqbench.config.budgets).
for _method in [m for m in config["methods"] if registry.get(m).sweep]:
    _run = paths.fill(paths.RUN, results=R, method=_method)
    _budgets = aqconfig.budgets(config, _method)
    _files = expand(
        f"{_run}/{{file}}",
        budget=_budgets,
        allow_missing=True,
        file=paths.RUN_FILES,
    )

    rule:
        name:
            f"ptq_{_method}"
        input:
            checkpoint=CHECKPOINT,
            data=DATA,
        output:
            update(_files),
        log:
            paths.fill(paths.PTQ_LOG, results=R, method=_method),
        benchmark:
            f"{R}/benchmarks/ptq/{{task}}/{{model}}/{_method}/seed{{seed}}.tsv"
        threads: config["threads"]["evaluate"]
        resources:
            mem_mb=resource("ptq", "mem_mb", 2000),
            runtime=resource("ptq", "runtime", 30),
            gpu=resource("ptq", "gpu", 0),
        params:
            **failure_params(_files[0]),
            code=code_version("quantize"),
            method=_method,
            budgets=" ".join(_budgets),
            out=lambda w, r=_run: r.format(task=w.task, model=w.model, seed=w.seed, budget="{budget}"),
            settings=lambda w, m=_method: aqconfig.as_json(aqconfig.method_settings(config, m, w.task)),
            eval_settings=settings("train"),
        shell:
            "aqbench quantize --method {params.method} --task {wildcards.task} --model {wildcards.model}"
            " --budget {params.budgets} --seed {wildcards.seed} --threads {threads} --checkpoint {input.checkpoint:q}"
            " --data {input.data:q} --settings {params.settings:q} --out {params.out:q}"
            " --evaluate {params.out:q}/metrics.json --eval-settings {params.eval_settings:q} 2> {log:q}"
            " || failed {params.record:q}"
