# Sourced on the GPU machine by the scripts/gpu/*.sh jobs: unpacks the Debian
# packages carried in .gpu-deps/ into /opt/hilum-deps (never into /), and points
# CMake, pkg-config and the loader at them.
HILUM_DEPS=/opt/hilum-deps
if [ -d .gpu-deps ] && [ ! -f "$HILUM_DEPS/.done" ]; then
  mkdir -p "$HILUM_DEPS"
  for f in .gpu-deps/*.deb; do dpkg -x "$f" "$HILUM_DEPS"; done
  touch "$HILUM_DEPS/.done"
fi
export PKG_CONFIG_SYSROOT_DIR=$HILUM_DEPS
export PKG_CONFIG_PATH=$HILUM_DEPS/usr/lib/x86_64-linux-gnu/pkgconfig:$HILUM_DEPS/usr/share/pkgconfig
export CMAKE_PREFIX_PATH=$HILUM_DEPS/usr:$HILUM_DEPS/usr/lib/x86_64-linux-gnu/cmake${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}
export LD_LIBRARY_PATH=$HILUM_DEPS/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export LIBRARY_PATH=$HILUM_DEPS/usr/lib/x86_64-linux-gnu${LIBRARY_PATH:+:$LIBRARY_PATH}
export CPATH=$HILUM_DEPS/usr/include${CPATH:+:$CPATH}
export PATH=/usr/local/cuda/bin:$PATH
export CCACHE_DISABLE=1
