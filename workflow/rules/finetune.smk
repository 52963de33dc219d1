rule finetune:
    input:
        data=DATA,
        teacher=teacher_input,
        model=local_model,
    output:
        update(directory(CHECKPOINT)),
    log:
        f"{R}/logs/finetune/{{task}}/{{model}}/seed{{seed}}.log",
    benchmark:
        f"{R}/benchmarks/finetune/{{task}}/{{model}}/seed{{seed}}.tsv"
    threads: config["threads"]["finetune"] or config["threads"]["train"]
    resources:
        mem_mb=resource("finetune", "mem_mb", 4000),
        runtime=resource("finetune", "runtime", 60),
        gpu=resource("finetune", "gpu", 0),
    params:
        **failure_params(CHECKPOINT),
        code=code_version("finetune"),
        settings=lambda w: aqconfig.as_json(
            {
                "model": aqconfig.model_spec(config, w.model),
                "train": result_train(aqconfig.model_train_settings(config, w.model, w.task)),
            }
        ),
        teacher=lambda w, input: f"--teacher {q(input.teacher)}" if input.teacher else "",
    shell:
        "aqbench finetune --task {wildcards.task} --seed {wildcards.seed} --threads {threads} --data {input.data:q}"
        " --settings {params.settings:q} {params.teacher} --out {output:q} 2> {log:q} || failed {params.record:q}"
