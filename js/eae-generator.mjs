// The EAE generator outside Python: what the Node script (sample.mjs, onnxruntime-node) and the browser page
// (page.mjs, onnxruntime-web) share. No runtime of its own: each passes its `ort` module in.
//
// Contract of generator.onnx (models/generator.json, the model card, says the same; JS cannot read ONNX
// metadata, so noise_dim and image_shape come from the card): inputs `noise` float32 [N, noise_dim] ~ N(0, I)
// and `u` float32 [N] ~ U[0, 1); output `images` float32 [N, C, H, W] in [0, 1].
//
// numpy's PCG64 stream, which the Python runtime draws its inputs from, is not reproduced here: randomInputs
// draws other N(0, 1) / U[0, 1) values (same distribution, other images). A port checks itself on the fixed
// inputs of models/test_vectors.json instead (checkVectors).

/** The model card's facts a sampler needs: {noiseDim, imageShape: [C, H, W], sha256}. */
export function cardFacts(card) {
  const noiseDim = card.noise_dim ?? card.latent_dim;
  const shape = card.image_shape;
  if (!Number.isInteger(noiseDim) || !Array.isArray(shape) || shape.length !== 3) {
    throw new Error('not an EAE generator card: it needs noise_dim (or latent_dim) and image_shape [C, H, W]');
  }
  return { noiseDim, imageShape: shape, sha256: card.sha256 };
}

/** mulberry32: a small seeded 32-bit generator of uniform [0, 1) doubles. */
function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Seeded inputs for n images: noise [n * noiseDim] ~ N(0, 1) (Box-Muller) and u [n] ~ U[0, 1), float32.
 * Not numpy's stream: the same seed gives the same images in JS only. */
export function randomInputs(n, noiseDim, seed) {
  const uniform = mulberry32(seed);
  const noise = new Float32Array(n * noiseDim);
  for (let i = 0; i < noise.length; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - uniform()));
    const theta = 2 * Math.PI * uniform();
    noise[i] = r * Math.cos(theta);
    if (i + 1 < noise.length) noise[i + 1] = r * Math.sin(theta);
  }
  const u = new Float32Array(n);
  for (let i = 0; i < n; i++) u[i] = uniform();
  return { noise, u };
}

/** Run the generator: float32 NCHW images in [0, 1] ({data, dims}). */
export async function generate(ort, session, noise, u, n, noiseDim) {
  const feeds = {
    noise: new ort.Tensor('float32', noise, [n, noiseDim]),
    u: new ort.Tensor('float32', u, [n]),
  };
  const out = await session.run(feeds);
  return { data: out.images.data, dims: out.images.dims.map(Number) };
}

/** Round half to even, as numpy's rint (the Python runtime's rounding). */
function rint(x) {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** float32 NCHW in [0, 1] -> uint8 NHWC: round(255 * x) clipped to [0, 255], as eae.export.runtime.to_uint8_nhwc. */
export function toUint8NHWC(data, [n, c, h, w]) {
  const out = new Uint8Array(n * c * h * w);
  for (let i = 0; i < n; i++) {
    for (let ch = 0; ch < c; ch++) {
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          const v = rint(Math.fround(data[((i * c + ch) * h + y) * w + x] * 255));
          out[((i * h + y) * w + x) * c + ch] = Math.min(255, Math.max(0, v));
        }
      }
    }
  }
  return out;
}

/** Tile uint8 NHWC images into one RGBA picture, ncol per row (default ceil(sqrt(n))), 1 px white borders, as
 * eae.images.image_grid: {width, height, rgba: Uint8ClampedArray}. */
export function gridRGBA(pixels, n, h, w, c, ncol = Math.ceil(Math.sqrt(n)), pad = 1) {
  ncol = Math.max(1, Math.min(ncol, n));
  const nrow = Math.ceil(n / ncol);
  const width = ncol * (w + pad) + pad;
  const height = nrow * (h + pad) + pad;
  const rgba = new Uint8ClampedArray(width * height * 4).fill(255);
  for (let i = 0; i < n; i++) {
    const top = pad + Math.floor(i / ncol) * (h + pad);
    const left = pad + (i % ncol) * (w + pad);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const src = ((i * h + y) * w + x) * c;
        const dst = ((top + y) * width + left + x) * 4;
        for (let k = 0; k < 3; k++) rgba[dst + k] = pixels[src + (c === 1 ? 0 : k)];
      }
    }
  }
  return { width, height, rgba };
}

function base64ToBytes(text) {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

export function bytesToBase64(bytes) {
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

/** models/test_vectors.json (format eae-test-vectors/1) -> {n, noiseDim, noise, u, expected (uint8 NHWC), tolerance}. */
export function decodeVectors(record) {
  if (record.format !== 'eae-test-vectors/1') throw new Error('not an EAE test-vector file (format eae-test-vectors/1)');
  const { n, noise_dim: noiseDim } = record;
  const noise = Float32Array.from(record.noise.flat());
  const u = Float32Array.from(record.u);
  const expected = base64ToBytes(record.images.base64);
  if (noise.length !== n * noiseDim || u.length !== n) throw new Error('test vectors: noise or u has the wrong size');
  return { n, noiseDim, noise, u, expected, shape: record.images.shape, tolerance: record.tolerance };
}

/** Run the test vectors' inputs through the session; compare with their images.
 * Returns {n, maxLevelDifference, tolerance, ok, images (uint8 NHWC)}. */
export async function checkVectors(ort, session, record) {
  const v = decodeVectors(record);
  const out = await generate(ort, session, v.noise, v.u, v.n, v.noiseDim);
  const images = toUint8NHWC(out.data, out.dims);
  if (images.length !== v.expected.length) {
    throw new Error(`the model gives ${images.length} pixels, the test vectors ${v.expected.length}`);
  }
  let maxDiff = 0;
  for (let i = 0; i < images.length; i++) maxDiff = Math.max(maxDiff, Math.abs(images[i] - v.expected[i]));
  return { n: v.n, maxLevelDifference: maxDiff, tolerance: v.tolerance, ok: maxDiff <= v.tolerance, images };
}
