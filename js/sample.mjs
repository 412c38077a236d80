#!/usr/bin/env node
// Sample from the exported EAE generator with onnxruntime-node (no Python):
//
//   node js/sample.mjs models/generator.onnx [-n 16] [--seed 0] [-o samples.png]
//   node js/sample.mjs models/generator.onnx --vectors models/test_vectors.json [--dump images.json]
//
// noise_dim and image_shape come from the model card beside the model (generator.json). --vectors runs the fixed
// inputs of the test vectors and compares the images with theirs: it prints {"n", "max_level_difference",
// "tolerance", "ok"} as JSON and exits 1 when a pixel differs by more than the tolerance (1 level).
// --dump writes the images it made (uint8 NHWC, base64) for another checker.
import { readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { crc32, deflateSync } from 'node:zlib';

import * as ort from 'onnxruntime-node';

import { bytesToBase64, cardFacts, checkVectors, generate, gridRGBA, randomInputs, toUint8NHWC } from './eae-generator.mjs';

const MAX_N = 4096; // as eae-sample's PNG grid

/** A PNG (8-bit RGB, no filter) of an RGBA picture, with node:zlib only. */
function encodePng({ width, height, rgba }) {
  const raw = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let k = 0; k < 3; k++) raw[y * (width * 3 + 1) + 1 + x * 3 + k] = rgba[(y * width + x) * 4 + k];
    }
  }
  const chunk = (type, data) => {
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const out = Buffer.alloc(body.length + 8);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc32(body), body.length + 4);
    return out;
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8); // 8 bits, RGB, deflate, no filter, no interlace
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

function fail(message) {
  console.error(`error: ${message}`);
  process.exit(2);
}

async function main() {
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: {
        n: { type: 'string', short: 'n', default: '16' },
        seed: { type: 'string', default: '0' },
        output: { type: 'string', short: 'o' },
        vectors: { type: 'string' },
        dump: { type: 'string' },
      },
    });
  } catch (err) {
    fail(err.message);
  }
  const { values, positionals } = parsed;
  if (positionals.length !== 1) fail('usage: node sample.mjs MODEL.onnx [-n N] [--seed S] [-o out.png] | --vectors FILE');
  const model = positionals[0];
  const cardFile = join(dirname(model), basename(model, '.onnx') + '.json');
  let facts;
  try {
    facts = cardFacts(JSON.parse(readFileSync(cardFile, 'utf8')));
  } catch (err) {
    fail(`model card ${cardFile}: ${err.message}`);
  }
  const session = await ort.InferenceSession.create(model, { executionProviders: ['cpu'] });

  if (values.vectors) {
    const result = await checkVectors(ort, session, JSON.parse(readFileSync(values.vectors, 'utf8')));
    if (values.dump) writeFileSync(values.dump, JSON.stringify({ images: bytesToBase64(result.images) }));
    console.log(JSON.stringify({ n: result.n, max_level_difference: result.maxLevelDifference, tolerance: result.tolerance, ok: result.ok }));
    process.exit(result.ok ? 0 : 1);
  }

  const n = Number(values.n);
  const seed = Number(values.seed);
  if (!Number.isInteger(n) || n < 1 || n > MAX_N) fail(`-n must be an integer between 1 and ${MAX_N}, got ${values.n}`);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) fail(`--seed must be an integer between 0 and 2**32 - 1, got ${values.seed}`);
  const { noise, u } = randomInputs(n, facts.noiseDim, seed);
  const out = await generate(ort, session, noise, u, n, facts.noiseDim);
  const [, c, h, w] = out.dims;
  const pixels = toUint8NHWC(out.data, out.dims);
  const output = values.output ?? 'samples.png';
  writeFileSync(output, encodePng(gridRGBA(pixels, n, h, w, c)));
  console.log(`wrote ${n} images [${h}, ${w}, ${c}] (seed ${seed}, onnxruntime-node ${ort.env.versions.common}) to ${output}`);
}

main().catch((err) => fail(err.message.split('\n')[0]));
