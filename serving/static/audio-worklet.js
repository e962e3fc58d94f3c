// AudioWorklet: microphone floats at the context's rate -> 16 kHz 16-bit PCM chunks.
//
// Downsampling uses a Hann-windowed sinc low-pass evaluated at each output instant (any
// input rate, fractional ratios included), normalized to unit DC gain. Every `chunkMs` the
// processor posts {pcm: ArrayBuffer (Int16, little-endian on every browser platform), rms}.

class Pcm16Downsampler extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const o = (options && options.processorOptions) || {};
    this.outRate = o.targetRate || 16000;
    this.ratio = sampleRate / this.outRate; // input samples per output sample
    this.cutoff = 0.9 * Math.min(1, 1 / this.ratio); // of the input Nyquist frequency
    this.half = Math.ceil(8 * Math.max(1, this.ratio)); // kernel half-width, input samples
    this.history = new Float32Array(0);
    this.position = 0; // next output instant, in input samples from history[0]
    this.chunk = new Int16Array(Math.round((this.outRate * (o.chunkMs || 100)) / 1000));
    this.fill = 0;
    this.sumSquares = 0;
  }

  kernel(distance) {
    if (Math.abs(distance) >= this.half) return 0;
    const z = this.cutoff * distance;
    const sinc = z === 0 ? 1 : Math.sin(Math.PI * z) / (Math.PI * z);
    return sinc * 0.5 * (1 + Math.cos((Math.PI * distance) / this.half));
  }

  emit(value) {
    const clipped = Math.max(-1, Math.min(1, value));
    this.sumSquares += clipped * clipped;
    this.chunk[this.fill++] = Math.round(clipped * 32767);
    if (this.fill === this.chunk.length) {
      const rms = Math.sqrt(this.sumSquares / this.fill);
      const pcm = this.chunk.slice().buffer;
      this.port.postMessage({ pcm, rms }, [pcm]);
      this.fill = 0;
      this.sumSquares = 0;
    }
  }

  process(inputs) {
    const input = inputs[0] && inputs[0][0];
    if (!input) return true;
    const samples = new Float32Array(this.history.length + input.length);
    samples.set(this.history);
    samples.set(input, this.history.length);
    let t = this.position;
    if (this.ratio === 1) {
      for (let i = Math.floor(t); i < samples.length; i++) this.emit(samples[i]);
      t = samples.length;
    } else {
      while (t + this.half < samples.length) {
        const center = Math.floor(t);
        let acc = 0;
        let norm = 0;
        for (let k = Math.max(0, center - this.half + 1); k <= center + this.half; k++) {
          const w = this.kernel(t - k);
          acc += w * samples[k];
          norm += w;
        }
        this.emit(norm > 0 ? acc / norm : 0);
        t += this.ratio;
      }
    }
    const keepFrom = Math.max(0, Math.min(samples.length, Math.floor(t) - this.half));
    this.history = samples.slice(keepFrom);
    this.position = t - keepFrom;
    return true;
  }
}

registerProcessor("pcm16-downsampler", Pcm16Downsampler);
