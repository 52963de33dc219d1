# Real compression: every quantized run of a method, on one task and seed, written as a bit-packed safetensors
# file (packed.safetensors), reloaded and checked against the run, its sizes in packed.json (packed_mb in the
# summary). One job per method sweep, as the PTQ jobs: each run takes about a second.
for _method in [m for m in config["methods"] if m in aqconfig.EXPORTED_METHODS]:
    _run = f"{R}/runs/{{task}}/{{model}}/{_method}/{{budget}}/seed{{seed}}"
    _budgets = aqconfig.budgets(config, _method)

    rule:
        name:
            f"export_{_method}"
        input:
            checkpoint=CHECKPOINT,
            data=DATA,
            runs=expand(f"{_run}/{{file}}", budget=_budgets, allow_missing=True,
                        file=["assignment.json", "state.safetensors", "method.json"]),
        output:
            expand(f"{_run}/{{file}}", budget=_budgets, allow_missing=True, file=["packed.safetensors", "packed.json"]),
        params:
            runs=lambda w, r=_run, b=_budgets: " ".join(
                r.format(task=w.task, model=w.model, seed=w.seed, budget=x) for x in b),
            settings=settings("train"),
        conda:
            ENV
        log:
            f"{R}/logs/export/{{task}}/{{model}}/{_method}/seed{{seed}}.log",
        benchmark:
            f"{R}/benchmarks/export/{{task}}/{{model}}/{_method}/seed{{seed}}.tsv"
        threads: config["threads"]["evaluate"]
        resources:
            mem_mb=resource("export", "mem_mb", 2000),
            runtime=resource("export", "runtime", 30),
        shell:
            "aqbench export --task {wildcards.task} --seed {wildcards.seed} --threads {threads}"
            " --checkpoint {input.checkpoint} --data {input.data} --settings {params.settings:q} {params.runs} 2> {log}"
