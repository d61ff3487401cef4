// TensorFlow.js (pure-JS CPU backend, @tensorflow/tfjs pinned in
// package.json) checks of ctrain's TF.js files. Driven by tests/tfjs/tfjs.sh.
//
//   node check.js predict --model DIR/model.json --kind layers|graph --format idx|cifar10
//        --input FILE --rescale R --n N --expect CTRAIN.csv [--tol T] [--argmax F] [--out CSV]
//     loads the model with tf.loadLayersModel / tf.loadGraphModel through a file
//     IOHandler, predicts the first N samples of FILE (pixels * R) and compares
//     with ctrain predict's CSV: max |difference| <= T (if given) and the same
//     argmax on at least a fraction F of the samples (if given).
//   node check.js bound --float DIR/model.json --quant DIR/model.json
//     decodes both manifests with tf.io.decodeWeights and checks every weight
//     against the quantization bound (affine: scale / 2; float16: half an ulp).
//   node check.js fromjson FILE.json:PARAMS ...
//     tf.models.modelFromJSON on each Keras JSON; countParams must equal PARAMS.
//   node check.js train --out DIR --images IDX --labels IDX --n N --pred CSV
//     trains a small CNN with TF.js itself (model.fit), saves it with
//     model.save into DIR and writes its predictions on the first N images.
'use strict';
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');
const tf = require('@tensorflow/tfjs');

function args(argv) {
  const a = {_: []};
  for (let i = 0; i < argv.length; i++) {
    if (argv[i].startsWith('--')) a[argv[i].slice(2)] = argv[++i];
    else a._.push(argv[i]);
  }
  return a;
}

function toArrayBuffer(b) { return b.buffer.slice(b.byteOffset, b.byteOffset + b.length); }

// The IOHandler tfjs-node would give for file://: model.json plus every
// group's shards, concatenated in manifest order.
function fileHandler(jsonPath) {
  const dir = path.dirname(jsonPath);
  return {
    load: async () => {
      const mj = JSON.parse(fs.readFileSync(jsonPath, 'utf8'));
      const specs = [], bufs = [];
      for (const g of mj.weightsManifest) {
        specs.push(...g.weights);
        for (const p of g.paths) bufs.push(toArrayBuffer(fs.readFileSync(path.join(dir, p))));
      }
      return {
        modelTopology: mj.modelTopology, format: mj.format, generatedBy: mj.generatedBy,
        convertedBy: mj.convertedBy, trainingConfig: mj.trainingConfig, signature: mj.signature,
        userDefinedMetadata: mj.userDefinedMetadata, weightSpecs: specs,
        weightData: tf.io.concatenateArrayBuffers(bufs),
      };
    },
  };
}

function saveHandler(dir) {
  return tf.io.withSaveHandler(async art => {
    fs.mkdirSync(dir, {recursive: true});
    const data = Array.isArray(art.weightData) ? tf.io.concatenateArrayBuffers(art.weightData) : art.weightData;
    fs.writeFileSync(path.join(dir, 'group1-shard1of1.bin'), Buffer.from(data));
    const mj = {
      modelTopology: art.modelTopology, format: art.format, generatedBy: art.generatedBy,
      convertedBy: art.convertedBy, trainingConfig: art.trainingConfig,
      weightsManifest: [{paths: ['group1-shard1of1.bin'], weights: art.weightSpecs}],
    };
    fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(mj));
    return {modelArtifactsInfo: {dateSaved: new Date(), modelTopologyType: 'JSON'}};
  });
}

// Samples as float32 NHWC: IDX (gzip or not) or CIFAR-10 binary records.
function readSamples(format, file, n, rescale) {
  let b = fs.readFileSync(file);
  if (b[0] === 0x1f && b[1] === 0x8b) b = zlib.gunzipSync(b);
  if (format === 'idx') {
    const count = b.readUInt32BE(4), h = b.readUInt32BE(8), w = b.readUInt32BE(12);
    n = Math.min(n, count);
    const x = new Float32Array(n * h * w);
    for (let i = 0; i < x.length; i++) x[i] = b[16 + i] * rescale;
    return tf.tensor4d(x, [n, h, w, 1]);
  }
  if (format === 'idx-labels') return Array.from(b.subarray(8, 8 + n));
  if (format === 'cifar10') {
    n = Math.min(n, Math.floor(b.length / 3073));
    const x = new Float32Array(n * 3072);
    for (let i = 0; i < n; i++)
      for (let y = 0; y < 32; y++)
        for (let c = 0; c < 32; c++)
          for (let ch = 0; ch < 3; ch++)
            x[i * 3072 + (y * 32 + c) * 3 + ch] = b[i * 3073 + 1 + ch * 1024 + y * 32 + c] * rescale;
    return tf.tensor4d(x, [n, 32, 32, 3]);
  }
  throw new Error(`unknown format ${format}`);
}

function readCsv(file) {
  return fs.readFileSync(file, 'utf8').trim().split('\n').map(l => l.split(',').map(Number));
}

const argmax = row => row.reduce((best, v, i) => (v > row[best] ? i : best), 0);

async function load(kind, json) {
  return kind === 'graph' ? tf.loadGraphModel(fileHandler(json)) : tf.loadLayersModel(fileHandler(json));
}

async function predictCmd(a) {
  const n = Number(a.n);
  const model = await load(a.kind, a.model);
  const raw = readSamples(a.format, a.input, n, Number(a.rescale));
  const shape = model.inputs[0].shape.slice(1); // the model's sample shape (an MLP takes 784 values)
  const x = raw.reshape([raw.shape[0], ...shape]);
  const rows = [];
  for (let s = 0; s < x.shape[0]; s += 500) { // in slices: the CPU backend's memory
    const xs = x.slice([s], [Math.min(500, x.shape[0] - s)]);
    const y = model.predict(xs);
    const d = y.arraySync();
    rows.push(...d);
    tf.dispose([xs, y]);
  }
  if (a.out) fs.writeFileSync(a.out, rows.map(r => r.map(v => v.toPrecision(9)).join(',')).join('\n') + '\n');
  if (!a.expect) return true;
  const want = readCsv(a.expect);
  if (want.length < rows.length) throw new Error(`${a.expect} has ${want.length} rows, expected ${rows.length}`);
  let maxd = 0, same = 0;
  for (let i = 0; i < rows.length; i++) {
    if (rows[i].length !== want[i].length) throw new Error(`row ${i}: ${rows[i].length} outputs vs ${want[i].length}`);
    for (let k = 0; k < rows[i].length; k++) maxd = Math.max(maxd, Math.abs(rows[i][k] - want[i][k]));
    same += argmax(rows[i]) === argmax(want[i]);
  }
  const frac = same / rows.length;
  let ok = true;
  if (a.tol !== undefined && !(maxd <= Number(a.tol))) ok = false;
  if (a.argmax !== undefined && !(frac >= Number(a.argmax))) ok = false;
  console.log(`${ok ? 'ok' : 'FAIL'} ${a.kind} ${a.model}: ${rows.length} samples, max |tfjs - ctrain| = ` +
              `${maxd.toExponential(3)}${a.tol !== undefined ? ` (tol ${a.tol})` : ''}, same argmax ` +
              `${(100 * frac).toFixed(2)}%${a.argmax !== undefined ? ` (need ${100 * Number(a.argmax)}%)` : ''}`);
  return ok;
}

function decodeDir(json) {
  const mj = JSON.parse(fs.readFileSync(json, 'utf8'));
  const dir = path.dirname(json), specs = [], bufs = [];
  for (const g of mj.weightsManifest) {
    specs.push(...g.weights);
    for (const p of g.paths) bufs.push(toArrayBuffer(fs.readFileSync(path.join(dir, p))));
  }
  return {specs, map: tf.io.decodeWeights(tf.io.concatenateArrayBuffers(bufs), specs)};
}

function boundCmd(a) {
  const f = decodeDir(a.float), q = decodeDir(a.quant);
  let ok = true, worst = 0, count = 0;
  for (const spec of q.specs) {
    const w = f.map[spec.name], v = q.map[spec.name];
    if (!w) { console.log(`FAIL ${spec.name}: missing in the float32 export`); ok = false; continue; }
    const wd = w.dataSync(), vd = v.dataSync(), qz = spec.quantization;
    for (let i = 0; i < wd.length; i++) {
      let bound = 0;
      if (qz && qz.dtype === 'float16') bound = Math.max(Math.abs(wd[i]) * Math.pow(2, -11), Math.pow(2, -25));
      else if (qz) bound = qz.scale / 2 * (1 + 1e-6) + Math.abs(wd[i]) * 1e-7;
      const e = Math.abs(wd[i] - vd[i]);
      worst = Math.max(worst, bound > 0 ? e / bound : (e > 0 ? Infinity : 0));
      if (e > bound) {
        if (ok) console.log(`FAIL ${spec.name}[${i}]: ${wd[i]} -> ${vd[i]}, error ${e} > bound ${bound}`);
        ok = false;
      }
      count++;
    }
  }
  console.log(`${ok ? 'ok' : 'FAIL'} bound ${a.quant}: ${count} values, worst error / bound = ${worst.toFixed(4)}`);
  return ok;
}

// ctrain's own ChannelPadding (ResNet's option-A shortcut) as a TF.js custom
// layer, so the rest of resnet20's JSON can be read by modelFromJSON.
class ChannelPadding extends tf.layers.Layer {
  constructor(config) { super(config); this.padding = config.padding; }
  computeOutputShape(s) { return s.slice(0, -1).concat([s[s.length - 1] + this.padding[0] + this.padding[1]]); }
  call(x) {
    const t = Array.isArray(x) ? x[0] : x;
    const pads = t.shape.map(() => [0, 0]);
    pads[pads.length - 1] = this.padding;
    return tf.pad(t, pads);
  }
  getConfig() { return Object.assign(super.getConfig(), {padding: this.padding}); }
  static get className() { return 'ChannelPadding'; }
}
tf.serialization.registerClass(ChannelPadding);

// Keras's TokenAndPositionEmbedding (the Keras text-classification
// tutorial's custom layer, which ctrain has built in): token and position
// embeddings added. TF.js has no such class either; this is the custom
// layer a TF.js user would register, with the same two weights.
class TokenAndPositionEmbedding extends tf.layers.Layer {
  constructor(config) {
    super(config);
    // tfjs hands custom layers their config keys in camelCase
    this.maxlen = config.maxlen; this.vocabSize = config.vocabSize; this.embedDim = config.embedDim;
  }
  build() {
    this.tokenEmb = this.addWeight('token_embeddings', [this.vocabSize, this.embedDim], 'float32',
                                   tf.initializers.randomUniform({minval: -0.05, maxval: 0.05}));
    this.posEmb = this.addWeight('position_embeddings', [this.maxlen, this.embedDim], 'float32',
                                 tf.initializers.randomUniform({minval: -0.05, maxval: 0.05}));
    this.built = true;
  }
  computeOutputShape(s) { return [s[0], s[1], this.embedDim]; }
  call(x) {
    const ids = (Array.isArray(x) ? x[0] : x).toInt();
    return tf.add(tf.gather(this.tokenEmb.read(), ids), this.posEmb.read().slice([0, 0], [ids.shape[1], this.embedDim]));
  }
  getConfig() {
    return Object.assign(super.getConfig(), {maxlen: this.maxlen, vocab_size: this.vocabSize, embed_dim: this.embedDim});
  }
  static get className() { return 'TokenAndPositionEmbedding'; }
}
tf.serialization.registerClass(TokenAndPositionEmbedding);

// Keras's MultiHeadAttention: tfjs-layers 4.22 has the class but does not
// register it for deserialization, so a TF.js user registers one. Same
// weights as Keras: query/key/value kernels (D, heads, key_dim|value_dim)
// with biases (heads, dim), output kernel (heads, value_dim, D) and bias.
class MultiHeadAttention extends tf.layers.Layer {
  constructor(config) {
    super(config);
    this.heads = config.numHeads; this.keyDim = config.keyDim;
    this.valueDim = config.valueDim || config.keyDim; this.useBias = config.useBias !== false;
  }
  build(shapes) {
    const d = (Array.isArray(shapes[0]) ? shapes[0] : shapes)[2], h = this.heads, init = tf.initializers.glorotUniform({});
    const w = (n, s) => this.addWeight(n, s, 'float32', init), b = (n, s) => this.addWeight(n, s, 'float32', tf.initializers.zeros());
    this.wq = w('query/kernel', [d, h, this.keyDim]); this.wk = w('key/kernel', [d, h, this.keyDim]);
    this.wv = w('value/kernel', [d, h, this.valueDim]); this.wo = w('attention_output/kernel', [h, this.valueDim, d]);
    if (this.useBias) {
      this.bq = b('query/bias', [h, this.keyDim]); this.bk = b('key/bias', [h, this.keyDim]);
      this.bv = b('value/bias', [h, this.valueDim]); this.bo = b('attention_output/bias', [d]);
    }
    this.built = true;
  }
  computeOutputShape(shapes) { return Array.isArray(shapes[0]) ? shapes[0] : shapes; }
  call(inputs) {
    return tf.tidy(() => {
      const [q, v] = Array.isArray(inputs) ? [inputs[0], inputs[1] || inputs[0]] : [inputs, inputs];
      const [B, T, D] = q.shape, S = v.shape[1], h = this.heads;
      const proj = (x, n, w, bias, dim) => { // (B, n, D) -> (B, h, n, dim)
        let y = tf.matMul(x.reshape([B * n, D]), w.read().reshape([D, h * dim]));
        if (bias) y = tf.add(y, bias.read().reshape([h * dim]));
        return y.reshape([B, n, h, dim]).transpose([0, 2, 1, 3]);
      };
      const Q = proj(q, T, this.wq, this.bq, this.keyDim), K = proj(v, S, this.wk, this.bk, this.keyDim);
      const V = proj(v, S, this.wv, this.bv, this.valueDim);
      const att = tf.softmax(tf.matMul(Q, K, false, true).div(Math.sqrt(this.keyDim)));
      const o = tf.matMul(att, V).transpose([0, 2, 1, 3]).reshape([B * T, h * this.valueDim]);
      let y = tf.matMul(o, this.wo.read().reshape([h * this.valueDim, D]));
      if (this.useBias) y = tf.add(y, this.bo.read());
      return y.reshape([B, T, D]);
    });
  }
  getConfig() {
    return Object.assign(super.getConfig(), {num_heads: this.heads, key_dim: this.keyDim, value_dim: this.valueDim,
                                             use_bias: this.useBias});
  }
  static get className() { return 'MultiHeadAttention'; }
}
tf.serialization.registerClass(MultiHeadAttention);

async function fromJsonCmd(a) {
  let ok = true;
  for (const item of a._.slice(1)) {
    const [file, params] = item.split(':');
    try {
      const m = await tf.models.modelFromJSON(JSON.parse(fs.readFileSync(file, 'utf8')));
      const n = m.countParams();
      const good = n === Number(params);
      console.log(`${good ? 'ok' : 'FAIL'} modelFromJSON ${path.basename(file)}: ${m.layers.length} layers, ${n} params` +
                  `${good ? '' : ` (ctrain has ${params})`}`);
      ok = ok && good;
    } catch (e) {
      console.log(`FAIL modelFromJSON ${path.basename(file)}: ${e.message.split('\n')[0]}`);
      ok = false;
    }
  }
  return ok;
}

async function trainCmd(a) {
  const n = Number(a.n);
  const x = readSamples('idx', a.images, n, 1 / 255), y = readSamples('idx-labels', a.labels, n);
  const model = tf.sequential({name: 'tfjs_cnn'});
  model.add(tf.layers.conv2d({inputShape: [28, 28, 1], filters: 8, kernelSize: 3, activation: 'relu', name: 'conv'}));
  model.add(tf.layers.batchNormalization({name: 'bn'}));
  model.add(tf.layers.maxPooling2d({poolSize: 2, name: 'pool'}));
  model.add(tf.layers.flatten({name: 'flat'}));
  model.add(tf.layers.dropout({rate: 0.2, name: 'drop'}));
  model.add(tf.layers.dense({units: 10, activation: 'softmax', name: 'out'}));
  model.compile({optimizer: tf.train.adam(0.003), loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy']});
  const h = await model.fit(x, tf.tensor1d(y, 'float32'), {epochs: 2, batchSize: 64, verbose: 0});
  console.log(`tfjs trained: loss ${h.history.loss.map(v => v.toFixed(4)).join(' -> ')}, accuracy ` +
              `${h.history.acc[h.history.acc.length - 1].toFixed(4)}`);
  await model.save(saveHandler(a.out));
  const p = model.predict(x.slice([0], [Math.min(n, 1000)])).arraySync();
  fs.writeFileSync(a.pred, p.map(r => r.map(v => v.toPrecision(9)).join(',')).join('\n') + '\n');
  return true;
}

(async () => {
  await tf.setBackend('cpu');
  await tf.ready();
  const a = args(process.argv.slice(2));
  const cmd = {predict: predictCmd, bound: boundCmd, fromjson: fromJsonCmd, train: trainCmd}[a._[0]];
  if (!cmd) { console.error('usage: node check.js predict|bound|fromjson|train ...'); process.exit(2); }
  const ok = await cmd(a);
  process.exit(ok ? 0 : 1);
})().catch(e => { console.error(`FAIL: ${e.stack || e}`); process.exit(1); });
