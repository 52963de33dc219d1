rule finetune:
    input:
        data=DATA,
    output:
        directory(CHECKPOINT),
    params:
        settings=lambda w: aqconfig.as_json(
            {"model": config["models"][w.model], "train": aqconfig.stage_settings(config, "train", w.task)}
        ),
    log:
        f"{R}/logs/finetune/{{task}}/{{model}}/seed{{seed}}.log",
    benchmark:
        f"{R}/benchmarks/finetune/{{task}}/{{model}}/seed{{seed}}.tsv"
    threads: config["threads"]["train"]
    resources:
        mem_mb=resource("finetune", "mem_mb", 4000),
        runtime=resource("finetune", "runtime", 60),
        gpu=resource("finetune", "gpu", 0),
    shell:
        "aqbench finetune --task {wildcards.task} --seed {wildcards.seed} --threads {threads} --data {input.data}"
        " --settings {params.settings:q} --out {output} 2> {log}"
