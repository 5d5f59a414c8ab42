#!/usr/bin/env bash
# A decode-only, LGPL FFmpeg for the desktop bundle, and PyAV built against it.
#
#   packaging/build_ffmpeg.sh PREFIX PYTHON
#
# The PyAV wheel on PyPI carries FFmpeg with every encoder (x264, x265, SVT-AV1, libvpx, LAME, ...) and TLS:
# 72 MiB that an analyzer which only reads videos never calls, and GPL code (x264, x265) in a bundle that is
# otherwise Apache-2.0/LGPL. This builds the same FFmpeg release as that wheel (8.1.2, Debian's source package)
# with the demuxers, parsers and decoders of the video formats people record in, the V4L2 camera input, swscale
# and swresample, and nothing else (~12 MiB), then installs PyAV (same version as the pip install) from source
# against it into PYTHON's environment. Everything comes from Debian and PyPI; the result is cached in PREFIX
# (rerunning is a no-op). Needs root for apt-get (build tools: nasm, pkgconf, libdav1d-dev for AV1); when the
# configured Debian release has another FFmpeg source, it adds a deb-src entry for unstable
# (/etc/apt/sources.list.d/libreface-ffmpeg-src.sources) to fetch that one tarball.
set -euo pipefail

PREFIX="$(mkdir -p "$1" && cd "$1" && pwd)"
PYTHON="$2"
FFMPEG_VERSION="8.1.2"          # = av.ffmpeg_version_info of the PyPI wheel of PYAV_VERSION
FFMPEG_DEBIAN="7:8.1.2-2"       # Debian source package with that upstream tarball
PYAV_VERSION="18.1.0"

have_ffmpeg() { [[ -f "$PREFIX/lib/pkgconfig/libavcodec.pc" && -f "$PREFIX/licenses/COPYING.LGPLv2.1" ]] && grep -q "$FFMPEG_VERSION" "$PREFIX/version" 2>/dev/null; }

if ! have_ffmpeg; then
    if command -v apt-get >/dev/null; then
        if ! command -v nasm >/dev/null || ! command -v pkg-config >/dev/null || [[ ! -f /usr/include/dav1d/dav1d.h ]]; then
            apt-get install -y -qq nasm pkgconf libdav1d-dev >/dev/null
        fi
        if ! apt-cache showsrc ffmpeg 2>/dev/null | grep -q "^Version: $FFMPEG_DEBIAN\$"; then
            # the source of Debian's current FFmpeg package (unstable carries the release PyAV's wheel uses)
            cat > /etc/apt/sources.list.d/libreface-ffmpeg-src.sources <<EOF
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: sid
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
            apt-get update -qq
        fi
    fi
    src="$PREFIX/src"
    mkdir -p "$src"
    if [[ ! -f "$src/ffmpeg_$FFMPEG_VERSION.orig.tar.xz" ]]; then
        (cd "$src" && apt-get source --download-only -qq "ffmpeg=$FFMPEG_DEBIAN")
    fi
    rm -rf "$src/ffmpeg-$FFMPEG_VERSION"
    tar -C "$src" -xJf "$src/ffmpeg_$FFMPEG_VERSION.orig.tar.xz"
    cd "$src/ffmpeg-$FFMPEG_VERSION"
    video="h264,hevc,mpeg4,mpeg1video,mpeg2video,mjpeg,mjpegb,vp8,vp9,libdav1d,prores,dnxhd,h263,h263p,msmpeg4v1,msmpeg4v2"
    video+=",msmpeg4v3,wmv1,wmv2,wmv3,vc1,flv,theora,cinepak,rawvideo,png,apng,gif,ffv1,huffyuv,ffvhuff,utvideo,qtrle"
    video+=",svq1,svq3,indeo3,indeo5,dvvideo,cfhd,magicyuv,v210,r210,zlib,tscc,msvideo1,rpza,smc,jpeg2000"
    audio="aac,aac_latm,mp3,mp3float,mp2,ac3,eac3,opus,vorbis,flac,alac,pcm_s16le,pcm_s16be,pcm_s24le,pcm_s32le"
    audio+=",pcm_f32le,pcm_u8,pcm_mulaw,pcm_alaw,adpcm_ima_wav,amrnb,amrwb,wmav1,wmav2"
    demux="mov,matroska,avi,mpegts,mpegps,mpegvideo,flv,asf,ogg,mxf,dv,h264,hevc,m4v,mjpeg,yuv4mpegpipe,gif,apng"
    demux+=",rawvideo,nut,wav,mp3,aac,ac3,flac,image2"
    parse="h264,hevc,mpeg4video,mpegvideo,mjpeg,vp8,vp9,av1,vc1,h263,png,gif,aac,aac_latm,mpegaudio,ac3,opus,vorbis,flac,dvbsub"
    ./configure --prefix="$PREFIX" --enable-shared --disable-static --disable-programs --disable-doc \
        --disable-everything --disable-autodetect --disable-network --disable-debug \
        --enable-pic --enable-libdav1d --enable-zlib \
        --enable-decoder="$video,$audio" --enable-demuxer="$demux" --enable-parser="$parse" \
        --enable-protocol=file,pipe --enable-indev=v4l2 \
        --enable-filter=format,aformat,scale,aresample,null,anull,transpose,hflip,vflip,rotate,fps \
        --enable-bsf=h264_mp4toannexb,hevc_mp4toannexb,extract_extradata,vp9_superframe_split,av1_frame_split \
        --enable-swscale --enable-swresample --enable-avdevice --enable-avfilter \
        --extra-ldflags="-Wl,-rpath,'\$\$ORIGIN'" > "$PREFIX/configure.log"
    make -j"$(nproc)" > "$PREFIX/make.log" 2>&1
    make install >> "$PREFIX/make.log" 2>&1
    mkdir -p "$PREFIX/licenses"   # shipped with the bundle (THIRD_PARTY_NOTICES.txt points to them)
    cp COPYING.LGPLv2.1 LICENSE.md "$PREFIX/licenses/"
    cp "$PREFIX/configure.log" "$PREFIX/licenses/ffmpeg-configure.txt"
    sed -n 's/^#define FFMPEG_CONFIGURATION //p' config.h > "$PREFIX/licenses/ffmpeg-configuration.txt"
    cp /usr/share/doc/libdav1d*/copyright "$PREFIX/licenses/dav1d-copyright.txt" 2>/dev/null || true
    echo "$FFMPEG_VERSION" > "$PREFIX/version"
    cd - >/dev/null
    rm -rf "$src/ffmpeg-$FFMPEG_VERSION"
fi

if ! "$PYTHON" -c "import av, sys; sys.exit(av.__version__ != '$PYAV_VERSION' or 'libx264' in av.codecs_available)" 2>/dev/null; then
    "$PYTHON" -m pip uninstall -y -q av 2>/dev/null || true
    PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig" LDFLAGS="-Wl,-rpath,$PREFIX/lib" \
        "$PYTHON" -m pip install -q --no-binary av --no-cache-dir "av==$PYAV_VERSION"
fi
"$PYTHON" -c "import av; assert 'h264' in av.codecs_available and 'libx264' not in av.codecs_available; print('build_ffmpeg.sh: PyAV', av.__version__, 'on FFmpeg', av.ffmpeg_version_info, '(decode-only)')"
