# bench/compare/plots.gp — three charts of one workload, both issuers on each.
# Called by bench/compare.sh: gnuplot -e "dir='...'; workload='hot'" plots.gp
# Reads <dir>/<issuer>-<workload>.timeline.tsv and .latency.tsv (flashsale
# --plot_data) and writes <dir>/<chart>-<workload>.png.

set terminal pngcairo size 900,500 font ",11"
set grid
set key top right
kafka = sprintf("%s/kafka-%s", dir, workload)
redis = sprintf("%s/redis-%s", dir, workload)

set output sprintf("%s/throughput-%s.png", dir, workload)
set title sprintf("%s workload: IssueCoupon answers per second", workload)
set xlabel "seconds since the first call"
set ylabel "answers / s"
plot kafka.".timeline.tsv" using 1:2 with lines lw 2 title "Kafka issuer", \
     redis.".timeline.tsv" using 1:2 with lines lw 2 title "Redis issuer"

set output sprintf("%s/issued-%s.png", dir, workload)
set title sprintf("%s workload: copies issued (results seen on the stream)", workload)
set ylabel "copies issued"
set key bottom right
plot kafka.".timeline.tsv" using 1:5 with lines lw 2 title "Kafka issuer", \
     redis.".timeline.tsv" using 1:5 with lines lw 2 title "Redis issuer"

set output sprintf("%s/latency-%s.png", dir, workload)
set title sprintf("%s workload: IssueCoupon latency distribution", workload)
set xlabel "latency (ms, log scale)"
set ylabel "fraction of calls answered within"
set logscale x
set key bottom right
set yrange [0:1]
plot kafka.".latency.tsv" using 2:1 with lines lw 2 title "Kafka issuer", \
     redis.".latency.tsv" using 2:1 with lines lw 2 title "Redis issuer"
