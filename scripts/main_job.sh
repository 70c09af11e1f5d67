#!/usr/bin/env bash
# The main job on the built-in default model. Until `edgevc export`/`edgevc run` land it samples real clips
# exactly as the default model's clip spec says and reports timings.
set -euo pipefail
cd "$(dirname "$0")/.."
E=.venv/bin/edgevc
clip=$(.venv/bin/python -c "from edgevc.assets import fetch; print(fetch('bbb_720p', quiet=False))")
echo "== probe: $clip"
$E probe "$clip"
echo "== sample it as i3d_k400's clip spec says"
$E sample "$clip" --model i3d_k400
kin=${EDGEVC_SHARED:-../shared}/clips/kinetics/arm_wrestling.mp4
if [ -f "$kin" ]; then
  echo "== sample $kin"
  $E sample "$kin" --model i3d_k400
fi
