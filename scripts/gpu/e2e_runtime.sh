# Sourced by the scripts that run the h200-e2e pack on the GPU machine
# (e2e_analyze.sh, train_vision_export.sh): unpacks .e2e/runtime.tar.xz (made
# here by scripts/gpu/pack_e2e.sh) to /opt/hilum-e2e, points the library and
# DICOM dictionary paths there, and sets R (that folder) and H (its hilum).
R=/opt/hilum-e2e
rm -rf "$R" && mkdir -p "$R"
python3 -c "import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])" .e2e/runtime.tar.xz "$R"
export LD_LIBRARY_PATH=$R/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export DCMDICTPATH=$R/share/dicom.dic:$R/share/private.dic
H=$R/hilum
