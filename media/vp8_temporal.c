/* VP8 with three temporal layers (L1T3), for the bots' video clips (media/fixtures.py `video_clip(layers=3)`).
 *
 * PyAV's libvpx wrapper cannot set libvpx's per-frame reference and update flags, and does not report which layer
 * a frame belongs to (docs/performance.md), so this small program does what Chromium does for `L1T3` and what
 * libvpx's own examples/vpx_temporal_svc_encoder.c does for its 3-layer mode: the pattern TL0, TL2, TL1, TL2 over
 * four frames, where
 *   TL0 references and updates only LAST (so TL0 alone decodes),
 *   TL1 references LAST, updates only GOLDEN,
 *   TL2 references LAST and GOLDEN and updates nothing, not even the entropy context,
 * so any upper layer can be left out without changing the pictures of the layers below.
 *
 * Usage: vp8_temporal WIDTH HEIGHT FPS BITRATE GOP COUNT  < COUNT raw I420 frames  > frames
 * Output per frame: u32 big-endian length, u8 key frame (0/1), u8 temporal layer id, then the VP8 frame.
 * Built once per machine by media/fixtures.py with `gcc -O2 ... -lvpx` (Debian: libvpx-dev).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vpx/vp8cx.h>
#include <vpx/vpx_encoder.h>

static void die(const char *what, vpx_codec_ctx_t *codec) {
  fprintf(stderr, "vp8_temporal: %s: %s\n", what, codec ? vpx_codec_error_detail(codec) : "");
  exit(1);
}

static void put_frame(const vpx_codec_cx_pkt_t *pkt, int layer) {
  uint32_t n = (uint32_t)pkt->data.frame.sz;
  unsigned char head[6] = {n >> 24, n >> 16, n >> 8, n, (pkt->data.frame.flags & VPX_FRAME_IS_KEY) ? 1 : 0,
                           (unsigned char)layer};
  if (fwrite(head, 1, 6, stdout) != 6 || fwrite(pkt->data.frame.buf, 1, n, stdout) != n) die("write", NULL);
}

int main(int argc, char **argv) {
  if (argc != 7) {
    fprintf(stderr, "usage: vp8_temporal WIDTH HEIGHT FPS BITRATE GOP COUNT\n");
    return 2;
  }
  int width = atoi(argv[1]), height = atoi(argv[2]), fps = atoi(argv[3]), bitrate = atoi(argv[4]);
  int gop = atoi(argv[5]), count = atoi(argv[6]);
  vpx_codec_enc_cfg_t cfg;
  vpx_codec_ctx_t codec;
  if (vpx_codec_enc_config_default(vpx_codec_vp8_cx(), &cfg, 0)) die("config", NULL);
  cfg.g_w = width;
  cfg.g_h = height;
  cfg.g_timebase.num = 1;
  cfg.g_timebase.den = fps;
  cfg.rc_target_bitrate = bitrate / 1000;
  cfg.rc_end_usage = VPX_CBR;
  cfg.g_lag_in_frames = 0;
  cfg.g_error_resilient = VPX_ERROR_RESILIENT_DEFAULT;
  cfg.kf_mode = VPX_KF_DISABLED; /* key frames exactly every GOP frames, forced below */
  cfg.ts_number_layers = 3;
  cfg.ts_periodicity = 4;
  cfg.ts_rate_decimator[0] = 4;
  cfg.ts_rate_decimator[1] = 2;
  cfg.ts_rate_decimator[2] = 1;
  cfg.ts_target_bitrate[0] = cfg.rc_target_bitrate * 6 / 10; /* cumulative, as libvpx's example */
  cfg.ts_target_bitrate[1] = cfg.rc_target_bitrate * 8 / 10;
  cfg.ts_target_bitrate[2] = cfg.rc_target_bitrate;
  cfg.ts_layer_id[0] = 0;
  cfg.ts_layer_id[1] = 2;
  cfg.ts_layer_id[2] = 1;
  cfg.ts_layer_id[3] = 2;
  if (vpx_codec_enc_init(&codec, vpx_codec_vp8_cx(), &cfg, 0)) die("init", &codec);
  vpx_codec_control(&codec, VP8E_SET_CPUUSED, -8);
  vpx_codec_control(&codec, VP8E_SET_STATIC_THRESHOLD, 1);
  vpx_codec_control(&codec, VP8E_SET_TOKEN_PARTITIONS, 0);

  vpx_image_t img;
  if (!vpx_img_alloc(&img, VPX_IMG_FMT_I420, width, height, 1)) die("image", NULL);
  size_t frame_size = (size_t)width * height * 3 / 2;
  int layer_of[4] = {0, 2, 1, 2};
  for (int i = 0; i < count; i++) {
    if (fread(img.img_data, 1, frame_size, stdin) != frame_size) die("short input", NULL);
    int layer = layer_of[i % 4];
    vpx_enc_frame_flags_t flags = 0;
    if (layer == 0) {
      flags = VP8_EFLAG_NO_REF_GF | VP8_EFLAG_NO_REF_ARF | VP8_EFLAG_NO_UPD_GF | VP8_EFLAG_NO_UPD_ARF;
    } else if (layer == 1) {
      flags = VP8_EFLAG_NO_REF_ARF | VP8_EFLAG_NO_UPD_LAST | VP8_EFLAG_NO_UPD_ARF;
    } else {
      flags = VP8_EFLAG_NO_REF_ARF | VP8_EFLAG_NO_UPD_LAST | VP8_EFLAG_NO_UPD_GF | VP8_EFLAG_NO_UPD_ARF |
              VP8_EFLAG_NO_UPD_ENTROPY;
    }
    if (i % gop == 0) flags = VPX_EFLAG_FORCE_KF; /* (a key frame starts a pattern: i % 4 == 0 when gop % 4 == 0) */
    vpx_codec_control(&codec, VP8E_SET_TEMPORAL_LAYER_ID, layer);
    if (vpx_codec_encode(&codec, &img, i, 1, flags, VPX_DL_REALTIME)) die("encode", &codec);
    const vpx_codec_cx_pkt_t *pkt;
    vpx_codec_iter_t iter = NULL;
    while ((pkt = vpx_codec_get_cx_data(&codec, &iter)) != NULL) {
      if (pkt->kind == VPX_CODEC_CX_FRAME_PKT) put_frame(pkt, layer);
    }
  }
  vpx_img_free(&img);
  if (vpx_codec_destroy(&codec)) die("destroy", &codec);
  return 0;
}
