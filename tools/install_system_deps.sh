#!/usr/bin/env bash
# Install (as root on Debian/Ubuntu) or check the system tools the workflow needs outside Python:
# ffmpeg/ffprobe (steps 1-2), libarchive (step 1), espeak-ng (test and demo speech), zip (test fixtures),
# chromium (the tests render the HTML report headless).
set -euo pipefail

PACKAGES=(ffmpeg espeak-ng libarchive13 zip chromium libdlib-data)

missing() {
  local out=()
  for bin in ffmpeg ffprobe espeak-ng zip chromium; do command -v "$bin" >/dev/null 2>&1 || out+=("$bin"); done
  ldconfig -p 2>/dev/null | grep -q 'libarchive\.so' || out+=(libarchive)
  [ -f /usr/share/dlib/shape_predictor_68_face_landmarks.dat ] || out+=(libdlib-data)  # eos engine's predictor
  echo "${out[@]:-}"
}

need=$(missing)
if [ -z "$need" ]; then
  echo "system tools: all present ($(ffmpeg -version | head -n1 | cut -d' ' -f1-3))"
  exit 0
fi
echo "system tools missing: $need"
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
  need=$(missing)
  [ -z "$need" ] && { echo "system tools: installed ${PACKAGES[*]}"; exit 0; }
fi
echo "ERROR: please install: sudo apt-get install ${PACKAGES[*]}   (still missing: ${need:-none})" >&2
exit 1
