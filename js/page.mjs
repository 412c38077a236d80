// The static page: samples from generator.onnx with onnxruntime-web (wasm) and draws a grid on the canvas.
// Serve the repository root over HTTP (the browser refuses to fetch a model from file://) and open /js/:
//   python -m http.server 8080 --bind 127.0.0.1      then   http://127.0.0.1:8080/js/
// Query parameters: model (default ../models/generator.onnx; its card generator.json beside it), n, seed, and
// vectors (a test-vector file: the page also runs its fixed inputs and compares, e.g. ?vectors=../models/test_vectors.json).
// When done, <pre id="result"> holds the outcome as JSON (what the headless-browser test reads).
import * as ort from './node_modules/onnxruntime-web/dist/ort.wasm.bundle.min.mjs';

import { bytesToBase64, cardFacts, checkVectors, generate, gridRGBA, randomInputs, toUint8NHWC } from './eae-generator.mjs';

const params = new URLSearchParams(location.search);
const modelUrl = new URL(params.get('model') ?? '../models/generator.onnx', location.href);
const cardUrl = new URL(modelUrl.pathname.replace(/\.onnx$/, '.json'), modelUrl);
const SCALE = 4;

ort.env.wasm.wasmPaths = new URL('./node_modules/onnxruntime-web/dist/', import.meta.url).href;
ort.env.wasm.numThreads = 1; // threads need a cross-origin-isolated page (COOP/COEP headers)

async function fetchOk(url, as) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return as === 'json' ? response.json() : new Uint8Array(await response.arrayBuffer());
}

function draw(grid) {
  const canvas = document.getElementById('grid');
  canvas.width = grid.width;
  canvas.height = grid.height;
  canvas.style.width = `${grid.width * SCALE}px`;
  canvas.style.height = `${grid.height * SCALE}px`;
  canvas.getContext('2d').putImageData(new ImageData(grid.rgba, grid.width, grid.height), 0, 0);
}

function facts(rows) {
  document.getElementById('facts').innerHTML = rows
    .map(([k, v, cls]) => `<tr><th>${k}</th><td${cls ? ` class="${cls}"` : ''}>${v}</td></tr>`)
    .join('');
}

// headless Chromium's virtual clock stands still while the page runs: no time is better than 0 ms
const sampled = ({ n, seed, ms }) => `${n} images, seed ${seed}` + (ms > 0 ? `, ${ms.toFixed(1)} ms` : '');

async function main() {
  const result = document.getElementById('result');
  try {
    const [card, model] = await Promise.all([fetchOk(cardUrl, 'json'), fetchOk(modelUrl)]);
    const { noiseDim, imageShape, sha256 } = cardFacts(card);
    const session = await ort.InferenceSession.create(model, { executionProviders: ['wasm'] });
    const rows = [
      ['model', `${modelUrl.pathname} (sha256 ${String(sha256).slice(0, 12)}…)`],
      ['dataset, sampler', `${card.dataset}, ${card.sampler}`],
      ['noise_dim, image', `${noiseDim}, ${imageShape.join('×')}`],
      ['runtime', `onnxruntime-web ${ort.env.versions.web} (wasm)`],
    ];
    const outcome = { ok: true, backend: 'wasm', noise_dim: noiseDim, image_shape: imageShape };
    const vectorsUrl = params.get('vectors');
    if (vectorsUrl) {
      const check = await checkVectors(ort, session, await fetchOk(new URL(vectorsUrl, location.href), 'json'));
      rows.push(['test vectors', `${check.n} images, largest difference ${check.maxLevelDifference} level(s) (allowed ${check.tolerance})`, check.ok ? 'ok' : 'bad']);
      Object.assign(outcome, { ok: check.ok, vectors_n: check.n, max_level_difference: check.maxLevelDifference, images: bytesToBase64(check.images) });
    }
    async function sample(n, seed) {
      const { noise, u } = randomInputs(n, noiseDim, seed);
      const t = performance.now();
      const out = await generate(ort, session, noise, u, n, noiseDim);
      const [, c, h, w] = out.dims;
      draw(gridRGBA(toUint8NHWC(out.data, out.dims), n, h, w, c));
      return { n, seed, ms: performance.now() - t };
    }
    const n = Math.min(1024, Math.max(1, Number(params.get('n') ?? 64) || 64));
    const seed = Math.max(0, Number(params.get('seed') ?? 0) || 0);
    document.getElementById('n').value = n;
    document.getElementById('seed').value = seed;
    const first = await sample(n, seed);
    rows.push(['sampled', sampled(first)]);
    facts(rows);
    document.getElementById('controls').addEventListener('submit', async (event) => {
      event.preventDefault();
      const again = await sample(Number(document.getElementById('n').value), Number(document.getElementById('seed').value));
      rows[rows.length - 1] = ['sampled', sampled(again)];
      facts(rows);
    });
    outcome.sampled = first.n;
    result.textContent = JSON.stringify(outcome);
  } catch (err) {
    facts([['error', String(err.message ?? err), 'bad']]);
    result.textContent = JSON.stringify({ ok: false, error: String(err.message ?? err) });
  }
}

main();
