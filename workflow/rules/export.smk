# Real compression and real inference, one job per method sweep (each run takes about a second, a job's start
# several): every quantized run written as a bit-packed safetensors file (packed.safetensors), reloaded and
# checked against the run (packed.json); then, with onnx.export, every run (FP included) as model.onnx on ONNX
# Runtime's kernels, built from the packed file, each form evaluated on the eval splits beside PyTorch and the
# exact one checked (onnx.json).
_ONNX = config["onnx"]["export"]
for _method in [m for m in config["methods"] if registry.get(m).exported or _ONNX]:
    _run = paths.fill(paths.RUN, results=R, method=_method)
    _budgets = aqconfig.budgets(config, _method)
    _outputs = list(paths.PACKED_FILES if registry.get(_method).exported else ())
    _outputs += list(paths.ONNX_FILES if _ONNX else ())
    _files = expand(f"{_run}/{{file}}", budget=_budgets, allow_missing=True, file=_outputs)

    rule:
        name:
            f"export_{_method}"
        input:
            checkpoint=CHECKPOINT,
            data=DATA,
            runs=expand(
                f"{_run}/{{file}}",
                budget=_budgets,
                allow_missing=True,
                file=paths.RUN_FILES[:3],
            ),
        output:
            update(_files),
        log:
            f"{R}/logs/export/{{task}}/{{model}}/{_method}/seed{{seed}}.log",
        benchmark:
            f"{R}/benchmarks/export/{{task}}/{{model}}/{_method}/seed{{seed}}.tsv"
        threads: config["threads"]["evaluate"]
        resources:
            mem_mb=resource("export", "mem_mb", 2000),
            runtime=resource("export", "runtime", 30),
        params:
            **failure_params(_files[0]),
            code=code_version("export"),
            runs=lambda w, r=_run, b=_budgets: [r.format(task=w.task, model=w.model, seed=w.seed, budget=x) for x in b],
            settings=settings("train"),
            onnx=(
                (
                    ["--onnx"]
                    + ([f"--limit={config['onnx']['eval_examples']}"] if config["onnx"]["eval_examples"] else [])
                )
                if _ONNX
                else []
            ),
        shell:
            "aqbench export --task {wildcards.task} --seed {wildcards.seed} --threads {threads}"
            " --checkpoint {input.checkpoint:q} --data {input.data:q} --settings {params.settings:q} {params.onnx}"
            " {params.runs:q} 2> {log:q} || failed {params.record:q}"
