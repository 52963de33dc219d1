# AQ-BERT: a search per task, model and budget (cached: the assignment, the architecture parameters and the
# trace), then quantization-aware fine-tuning with the searched assignment, evaluated. aq compresses bert,
# aq_distil the distilled student (models.distil); both search at the aq section's budgets.
SEARCH = f"{R}/search/{{task}}/{{model}}/{{budget}}/seed{{seed}}"


rule aq_search:
    input:
        checkpoint=CHECKPOINT,
        data=DATA,
    output:
        assignment=f"{SEARCH}/assignment.json",
        trace=f"{SEARCH}/trace.json",
        alpha=f"{SEARCH}/alpha.safetensors",
    params:
        settings=lambda w: aqconfig.as_json(aqconfig.search_settings(config, w.task)),
    conda:
        ENV
    log:
        f"{R}/logs/aq_search/{{task}}/{{model}}/{{budget}}/seed{{seed}}.log",
    benchmark:
        f"{R}/benchmarks/aq_search/{{task}}/{{model}}/{{budget}}/seed{{seed}}.tsv"
    threads: config["threads"]["train"]
    resources:
        mem_mb=resource("aq_search", "mem_mb", 4000),
        runtime=resource("aq_search", "runtime", 60),
        gpu=resource("aq_search", "gpu", 0),
    shell:
        "aqbench search --task {wildcards.task} --budget {wildcards.budget} --seed {wildcards.seed} --threads {threads}"
        " --checkpoint {input.checkpoint} --data {input.data} --settings {params.settings:q}"
        " --out $(dirname {output.assignment}) 2> {log}"


rule aq:
    input:
        checkpoint=CHECKPOINT,
        data=DATA,
        assignment=rules.aq_search.output.assignment,
    output:
        assignment=f"{RUN}/assignment.json",
        state=f"{RUN}/state.safetensors",
        info=f"{RUN}/method.json",
        metrics=f"{RUN}/metrics.json",
    wildcard_constraints:
        method="aq|aq_distil",
    params:
        settings=lambda w: aqconfig.as_json(aqconfig.method_settings(config, w.method, w.task)),
        eval_settings=settings("train"),
    conda:
        ENV
    log:
        f"{R}/logs/aq/{JOB}.log",
    benchmark:
        f"{R}/benchmarks/aq/{JOB}.tsv"
    threads: config["threads"]["train"]
    resources:
        mem_mb=resource("aq", "mem_mb", 4000),
        runtime=resource("aq", "runtime", 60),
        gpu=resource("aq", "gpu", 0),
    shell:
        "aqbench quantize --method {wildcards.method} --task {wildcards.task} --model {wildcards.model}"
        " --budget {wildcards.budget} --seed {wildcards.seed} --threads {threads} --checkpoint {input.checkpoint}"
        " --data {input.data} --settings {params.settings:q} --input assignment={input.assignment}"
        " --out $(dirname {output.assignment}) --evaluate {output.metrics} --eval-settings {params.eval_settings:q} 2> {log}"
