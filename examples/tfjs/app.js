// The page's logic: load model/model.json with tf.loadLayersModel, turn a
// 28x28 grayscale image (a test-set PNG or the drawing pad scaled down)
// into the model's input (pixels / 255, as [augment] rescale in
// examples/fashion_mnist_cnn.conf), and show the ten class probabilities.
// The last result is also in #result's data-index / data-class attributes
// (the headless-browser test reads them), and window.modelLoaded says when
// the model is ready.
'use strict';
const CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];
let model = null;

function pixelsOf(source) {
  const c = document.createElement('canvas');
  c.width = c.height = 28;
  const ctx = c.getContext('2d');
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(source, 0, 0, 28, 28);
  const rgba = ctx.getImageData(0, 0, 28, 28).data, x = new Float32Array(784);
  for (let i = 0; i < 784; i++) x[i] = rgba[4 * i] / 255; // grayscale: R = G = B
  return x;
}

function show(probs, index) {
  let best = 0;
  for (let k = 1; k < 10; k++) if (probs[k] > probs[best]) best = k;
  const r = document.getElementById('result');
  r.textContent = `${CLASSES[best]} (${(100 * probs[best]).toFixed(1)}%)`;
  r.dataset.index = String(index);
  r.dataset.class = String(best);
  const bars = document.getElementById('bars');
  bars.innerHTML = '';
  CLASSES.forEach((name, k) => {
    const row = document.createElement('div');
    row.className = 'bar';
    row.innerHTML = `<span>${name}</span><div style="width:${Math.round(200 * probs[k])}px"></div>${(100 * probs[k]).toFixed(1)}%`;
    bars.appendChild(row);
  });
}

function classify(pixels, index) {
  if (!model) return;
  const probs = tf.tidy(() => model.predict(tf.tensor4d(pixels, [1, 28, 28, 1])).dataSync());
  show(Array.from(probs), index);
}

function setupPad() {
  const pad = document.getElementById('pad'), ctx = pad.getContext('2d');
  ctx.fillStyle = '#000';
  ctx.fillRect(0, 0, pad.width, pad.height);
  let down = false;
  const at = e => { const b = pad.getBoundingClientRect(); return [e.clientX - b.left, e.clientY - b.top]; };
  const dot = e => {
    const [x, y] = at(e);
    ctx.fillStyle = '#fff';
    ctx.beginPath();
    ctx.arc(x, y, 13, 0, 2 * Math.PI);
    ctx.fill();
  };
  pad.addEventListener('pointerdown', e => { down = true; dot(e); });
  pad.addEventListener('pointermove', e => { if (down) dot(e); });
  window.addEventListener('pointerup', () => { down = false; });
  document.getElementById('clear').onclick = () => { ctx.fillStyle = '#000'; ctx.fillRect(0, 0, pad.width, pad.height); };
  document.getElementById('classify').onclick = () => classify(pixelsOf(pad), 'drawing');
}

async function setupSamples() {
  const list = await (await fetch('samples/index.json')).json();
  const box = document.getElementById('samples');
  list.forEach((file, i) => {
    const img = new Image();
    img.id = `sample-${i}`;
    img.src = `samples/${file}`;
    img.title = `test image ${i}`;
    img.onclick = () => {
      document.querySelectorAll('#samples img').forEach(el => el.classList.remove('sel'));
      img.classList.add('sel');
      classify(pixelsOf(img), i);
    };
    box.appendChild(img);
  });
}

(async () => {
  setupPad();
  await setupSamples();
  try {
    model = await tf.loadLayersModel('model/model.json');
    document.getElementById('status').textContent =
      `model loaded: ${model.layers.length} layers, ${model.countParams()} parameters, TF.js ${tf.version.tfjs} (${tf.getBackend()} backend)`;
    window.modelLoaded = true;
  } catch (e) {
    document.getElementById('status').textContent = `could not load model/model.json: ${e.message}`;
    window.modelError = String(e);
  }
})();
