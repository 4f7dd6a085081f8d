package convert

import (
	"encoding/binary"
	"strconv"
	"strings"
)

// geminiVoices are Gemini's prebuilt TTS voices.
var geminiVoices = []string{
	"Zephyr", "Puck", "Charon", "Kore", "Fenrir", "Leda", "Orus", "Aoede", "Callirrhoe",
	"Autonoe", "Enceladus", "Iapetus", "Umbriel", "Algieba", "Despina", "Erinome", "Algenib",
	"Rasalgethi", "Laomedeia", "Achernar", "Alnilam", "Schedar", "Gacrux", "Pulcherrima",
	"Achird", "Zubenelgenubi", "Vindemiatrix", "Sadachbia", "Sadaltager", "Sulafat",
}

// openAIVoices maps OpenAI voice names to Gemini voices of a similar character.
var openAIVoices = map[string]string{
	"alloy": "Zephyr", "ash": "Charon", "ballad": "Enceladus", "coral": "Aoede",
	"echo": "Puck", "fable": "Fenrir", "onyx": "Orus", "nova": "Leda", "sage": "Sulafat",
	"shimmer": "Callirrhoe", "verse": "Iapetus", "marin": "Achernar", "cedar": "Algenib",
}

// Voice maps a requested voice (an OpenAI name or a Gemini name, any case) to
// a Gemini prebuilt voice, falling back to fallback (TTS_VOICE_NAME).
func Voice(name, fallback string) string {
	n := strings.ToLower(strings.TrimSpace(name))
	if v, ok := openAIVoices[n]; ok {
		return v
	}
	for _, v := range geminiVoices {
		if strings.ToLower(v) == n {
			return v
		}
	}
	if fallback == "" {
		return "Zephyr"
	}
	return fallback
}

// PCMRate reads the sample rate from a Gemini audio mime type such as
// "audio/L16;codec=pcm;rate=24000"; 24000 when absent.
func PCMRate(mime string) int {
	for _, p := range strings.Split(mime, ";") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(p), "rate="); ok {
			if r, err := strconv.Atoi(v); err == nil && r > 0 {
				return r
			}
		}
	}
	return 24000
}

// WAV prepends a 44-byte RIFF header to signed 16-bit little-endian mono PCM.
func WAV(pcm []byte, rate int) []byte {
	out := make([]byte, 44, 44+len(pcm))
	copy(out[0:], "RIFF")
	binary.LittleEndian.PutUint32(out[4:], uint32(36+len(pcm)))
	copy(out[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(out[16:], 16) // fmt chunk size
	binary.LittleEndian.PutUint16(out[20:], 1)  // PCM
	binary.LittleEndian.PutUint16(out[22:], 1)  // mono
	binary.LittleEndian.PutUint32(out[24:], uint32(rate))
	binary.LittleEndian.PutUint32(out[28:], uint32(rate*2)) // byte rate
	binary.LittleEndian.PutUint16(out[32:], 2)              // block align
	binary.LittleEndian.PutUint16(out[34:], 16)             // bits per sample
	copy(out[36:], "data")
	binary.LittleEndian.PutUint32(out[40:], uint32(len(pcm)))
	return append(out, pcm...)
}
