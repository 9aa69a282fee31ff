# Sourced by the scripts that run the h200-e2e pack on the GPU machine
# (e2e_analyze.sh, train_vision_export.sh): unpacks .e2e/runtime.tar.xz (made
# here by scripts/gpu/pack_e2e.sh) to /opt/hilum-e2e, points the library and
# DICOM dictionary paths there, and sets R (that folder) and H (its hilum).
# Unpacked once per pack: runs started side by side (several eval_sets.sh with
# their own W) share it, under a lock, instead of unpacking over each other.
R=/opt/hilum-e2e
exec 9>/tmp/hilum-e2e.lock
flock 9
e2e_stamp=$(cksum <.e2e/runtime.tar.xz)  # the pack's CRC and size
if [ "$(cat "$R/.stamp" 2>/dev/null)" != "$e2e_stamp" ]; then
  rm -rf "$R" && mkdir -p "$R"
  python3 -c "import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])" .e2e/runtime.tar.xz "$R"
  echo "$e2e_stamp" >"$R/.stamp"
fi
flock -u 9
exec 9>&-
export LD_LIBRARY_PATH=$R/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export DCMDICTPATH=$R/share/dicom.dic:$R/share/private.dic
H=$R/hilum
