# Sourced by the GPU scripts (run_tests.sh, run_multi.sh) after they set out, stages
# and logs: the summary file, stage selection, the reference models, and run().
# NVLink multicast stays off on the lent machines (a program using it can take the
# host's GPUs out of service).
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
rm -rf "$logs"; mkdir -p "$logs" "$out"
summary="$out/summary.txt"; : > "$summary"
note() { echo "$*" | tee -a "$summary"; }
has() { [[ " $stages " == *" $1 "* ]]; }
ref=/tmp/vela-reference; rm -rf "$ref"; mkdir -p "$ref"
tar xJf .gpu/reference.tar.xz -C "$ref" && export VELA_REFERENCE_DIR="$ref"

run() {  # run NAME TIMEOUT CMD...: logs to $logs/NAME.log, one summary line
  local name=$1 limit=$2; shift 2
  local t0=$(date +%s.%N)
  timeout "$limit" "$@" > "$logs/$name.log" 2>&1
  local rc=$? t1=$(date +%s.%N)
  note "$(printf "%-34s %-6s %6.1f s" "$name" "$([ $rc -eq 0 ] && echo ok || echo "rc=$rc")" "$(awk "BEGIN{print $t1 - $t0}")")"
  [ $rc -eq 0 ] || tail -n 25 "$logs/$name.log" | sed 's/^/    | /' | tee -a "$summary"
  return $rc
}
