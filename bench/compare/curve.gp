# bench/compare/curve.gp — latency and CPU against load, both issuers.
# Called by bench/compare.sh: gnuplot -e "dir='...'" curve.gp
# Reads <dir>/curve-kafka.tsv, curve-redis.tsv and curve-bare.tsv (bench/compare/lib.sh's
# curve_tsv: one line per offered rate, saturation last; columns: offered,
# answered/s, IssueCoupon p50, p99, accept->result p50, p99, then CPU s per
# 1,000 calls of gateway, worker|outbox, kafka|redis, postgres, flashsale,
# machine) and writes <dir>/curve-latency.png and <dir>/curve-cpu.png.

set terminal pngcairo size 900,520 font ",11"
set grid
set logscale xy
set xlabel "offered calls per second, open loop (stars: saturation, at the rate it answered)"
# Open-loop points on the lines by offered rate; saturation (offered 0) as a
# star at the rate it reached.
kafka = dir."/curve-kafka.tsv"
redis = dir."/curve-redis.tsv"
bare = dir."/curve-bare.tsv"

set output dir."/curve-latency.png"
set title "spread workload: latency against load"
set ylabel "ms (log scale)"
set key top left
plot kafka using ($1 > 0 ? $1 : NaN):3 with linespoints lw 2 pt 7 lc rgb "#1f77b4" title "Kafka: IssueCoupon p50", \
     kafka using ($1 > 0 ? $1 : NaN):4 with linespoints lw 2 pt 5 lc rgb "#1f77b4" dt 2 title "Kafka: IssueCoupon p99", \
     kafka using ($1 > 0 ? $1 : NaN):5 with linespoints lw 2 pt 7 lc rgb "#2ca02c" title "Kafka: accept → result p50", \
     kafka using ($1 > 0 ? $1 : NaN):6 with linespoints lw 2 pt 5 lc rgb "#2ca02c" dt 2 title "Kafka: accept → result p99", \
     redis using ($1 > 0 ? $1 : NaN):3 with linespoints lw 2 pt 7 lc rgb "#d62728" title "Redis: IssueCoupon p50 (final)", \
     redis using ($1 > 0 ? $1 : NaN):4 with linespoints lw 2 pt 5 lc rgb "#d62728" dt 2 title "Redis: IssueCoupon p99 (final)", \
     kafka using ($1 == 0 ? $2 : NaN):3 with points pt 3 ps 2 lc rgb "#1f77b4" notitle, \
     kafka using ($1 == 0 ? $2 : NaN):4 with points pt 3 ps 2 lc rgb "#1f77b4" notitle, \
     kafka using ($1 == 0 ? $2 : NaN):5 with points pt 3 ps 2 lc rgb "#2ca02c" notitle, \
     kafka using ($1 == 0 ? $2 : NaN):6 with points pt 3 ps 2 lc rgb "#2ca02c" notitle, \
     redis using ($1 == 0 ? $2 : NaN):3 with points pt 3 ps 2 lc rgb "#d62728" notitle, \
     redis using ($1 == 0 ? $2 : NaN):4 with points pt 3 ps 2 lc rgb "#d62728" notitle

set output dir."/curve-cpu.png"
set title "spread workload: CPU per call against load"
set ylabel "CPU seconds per 1,000 calls (log scale)"
set key top right
plot kafka using ($1 > 0 ? $1 : NaN):12 with linespoints lw 2 pt 7 lc rgb "#1f77b4" title "Kafka path: machine", \
     kafka using ($1 > 0 ? $1 : NaN):7 with linespoints lw 1 pt 6 lc rgb "#1f77b4" dt 3 title "Kafka path: gateway", \
     kafka using ($1 > 0 ? $1 : NaN):9 with linespoints lw 1 pt 4 lc rgb "#1f77b4" dt 2 title "Kafka path: broker", \
     kafka using ($1 > 0 ? $1 : NaN):10 with linespoints lw 1 pt 8 lc rgb "#1f77b4" dt 4 title "Kafka path: PostgreSQL", \
     redis using ($1 > 0 ? $1 : NaN):12 with linespoints lw 2 pt 7 lc rgb "#d62728" title "Redis path: machine", \
     redis using ($1 > 0 ? $1 : NaN):7 with linespoints lw 1 pt 6 lc rgb "#d62728" dt 3 title "Redis path: gateway", \
     redis using ($1 > 0 ? $1 : NaN):10 with linespoints lw 1 pt 8 lc rgb "#d62728" dt 4 title "Redis path: PostgreSQL", \
     bare using 1:($7 + $11) with linespoints lw 2 pt 7 lc rgb "#7f7f7f" title "bare gRPC server + load generator", \
     kafka using ($1 == 0 ? $2 : NaN):12 with points pt 3 ps 2 lc rgb "#1f77b4" notitle, \
     redis using ($1 == 0 ? $2 : NaN):12 with points pt 3 ps 2 lc rgb "#d62728" notitle
