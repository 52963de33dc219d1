rule prepare_data:
    input:
        local_data,
    output:
        update(directory(DATA)),
    log:
        f"{R}/logs/prepare_data/{{task}}.log",
    benchmark:
        f"{R}/benchmarks/prepare_data/{{task}}.tsv"
    threads: 1
    resources:
        mem_mb=resource("prepare_data", "mem_mb", 2000),
        runtime=resource("prepare_data", "runtime", 30),
    params:
        **failure_params(DATA),
        code=code_version("prepare"),
        settings=settings("data"),
    shell:
        "aqbench prepare --task {wildcards.task} --settings {params.settings:q} --out {output:q} 2> {log:q}"
        " || failed {params.record:q}"
