package openai_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	oai "github.com/openai/openai-go/v3"

	"github.com/gemini-balance-go/testkit/fakegemini"
)

func TestSpeechInAFormatItCannotEncodeIsRefusedWithTheSupportedList(t *testing.T) {
	e := newEnv(t, envOptions{})
	cl := e.client("/v1", token)
	for _, f := range []oai.AudioSpeechNewParamsResponseFormat{
		oai.AudioSpeechNewParamsResponseFormatMP3, oai.AudioSpeechNewParamsResponseFormatOpus,
		oai.AudioSpeechNewParamsResponseFormatAAC, oai.AudioSpeechNewParamsResponseFormatFLAC,
	} {
		res, err := cl.Audio.Speech.New(ctxTimeout(t), oai.AudioSpeechNewParams{
			Model: oai.SpeechModelTTS1, Input: "Welcome back!", ResponseFormat: f,
			Voice: oai.AudioSpeechNewParamsVoiceUnion{OfString: oai.String("alloy")},
		})
		if err == nil {
			ct := res.Header.Get("Content-Type")
			res.Body.Close()
			t.Fatalf("%s: answered %s instead of refusing", f, ct)
		}
		var apiErr *oai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadRequest || apiErr.Param != "response_format" ||
			!strings.Contains(apiErr.Message, "wav, pcm") {
			t.Errorf("%s: want 400 on response_format listing wav, pcm; got %v", f, err)
		}
	}
	if n := len(e.fake.Requests(fakegemini.Filter{Method: "generateContent"})); n != 0 {
		t.Errorf("%d upstream calls for refused requests", n)
	}
}
