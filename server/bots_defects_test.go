package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/heraldim/herald/server"
)

type sentMessage struct {
	Text     string `json:"text"`
	Caption  string `json:"caption"`
	Entities []struct {
		Type string `json:"type"`
	} `json:"entities"`
	CaptionEntities []struct {
		Type string `json:"type"`
	} `json:"caption_entities"`
	Photo []struct {
		FileID string `json:"file_id"`
	} `json:"photo"`
	Document *struct {
		FileID string `json:"file_id"`
	} `json:"document"`
}

// TestBotNullEntitiesMeanAbsent: entities=null (and caption_entities=null)
// in a url-encoded or multipart body, as a widely used Go library sends on
// every call, leaves parse_mode in force (issue 23 item 1).
func TestBotNullEntitiesMeanAbsent(t *testing.T) {
	n := startBotNode(t, laxBots)
	alice := signup(t, n, "alice")
	name, token := newBot(t, alice)
	send(t, alice, to(name), "/start")
	base := n.URL() + "/bot" + token + "/"
	chat := fmt.Sprint(alice.user.id)

	form, _ := http.NewRequestWithContext(ctxT(t), http.MethodPost, base+"sendMessage", strings.NewReader(url.Values{
		"chat_id": {chat}, "text": {"<b>bold</b> words"}, "parse_mode": {"HTML"}, "entities": {"null"},
	}.Encode()))
	form.Header.Set("Content-Type", "application/x-www-form-urlencoded")

	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for k, v := range map[string]string{"chat_id": chat, "caption": "<b>bold</b> caption", "parse_mode": "HTML", "caption_entities": "null"} {
		mw.WriteField(k, v)
	}
	fw, _ := mw.CreateFormFile("document", "notes.txt")
	fw.Write([]byte("some notes"))
	mw.Close()
	mp, _ := http.NewRequestWithContext(ctxT(t), http.MethodPost, base+"sendDocument", &b)
	mp.Header.Set("Content-Type", mw.FormDataContentType())

	var m sentMessage
	mustOK(t, do(t, form), &m)
	if m.Text != "bold words" || len(m.Entities) != 1 || m.Entities[0].Type != "bold" {
		t.Errorf("form with entities=null: %+v", m)
	}
	m = sentMessage{}
	mustOK(t, do(t, mp), &m)
	if m.Caption != "bold caption" || len(m.CaptionEntities) != 1 || m.CaptionEntities[0].Type != "bold" {
		t.Errorf("multipart with caption_entities=null: %+v", m)
	}
}

// TestBotEmptyFilenameIsAFile: a multipart part with filename="" is a
// file, as a popular Go library sends photos (issue 23 item 2).
func TestBotEmptyFilenameIsAFile(t *testing.T) {
	n := startBotNode(t, laxBots)
	alice := signup(t, n, "alice")
	name, token := newBot(t, alice)
	send(t, alice, to(name), "/start")

	var img bytes.Buffer
	png.Encode(&img, image.NewRGBA(image.Rect(0, 0, 8, 8)))
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	mw.WriteField("chat_id", fmt.Sprint(alice.user.id))
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="photo"; filename=""`)
	h.Set("Content-Type", "application/octet-stream")
	pw, _ := mw.CreatePart(h)
	pw.Write(img.Bytes())
	mw.Close()
	req, _ := http.NewRequestWithContext(ctxT(t), http.MethodPost, n.URL()+"/bot"+token+"/sendPhoto", &b)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	var m sentMessage
	mustOK(t, do(t, req), &m)
	if len(m.Photo) == 0 || m.Photo[0].FileID == "" {
		t.Fatalf("sendPhoto with filename=\"\": %+v", m)
	}
}

// TestSetWebhookEndsWaitingPoll: setWebhook ends a getUpdates already
// waiting with 409, as Telegram does, so the next update is not
// delivered twice (issue 23 item 3).
func TestSetWebhookEndsWaitingPoll(t *testing.T) {
	n := startBotNode(t, laxBots)
	alice := signup(t, n, "alice")
	_, token := newBot(t, alice)
	webhookEndsPoll(t, n, n, token)
}

// webhookEndsPoll starts a poll on a and sets a webhook through b.
func webhookEndsPoll(t *testing.T, a, b *server.Node, token string) {
	t.Helper()
	for try := 1; ; try++ {
		waiting := make(chan apiResult, 1)
		go func() {
			var r apiResult
			resp, err := http.Post(a.URL()+"/bot"+token+"/getUpdates", "application/json", strings.NewReader(`{"timeout":30}`))
			if err == nil {
				json.NewDecoder(resp.Body).Decode(&r)
				resp.Body.Close()
				r.status = resp.StatusCode
			}
			waiting <- r
		}()
		// Let the poll start waiting: a later setWebhook must end it.
		time.Sleep(time.Duration(try) * 300 * time.Millisecond)
		mustOK(t, call(t, b, token, "setWebhook", map[string]any{"url": "http://127.0.0.1:9/hook"}), nil)
		var r apiResult
		select {
		case r = <-waiting:
		case <-time.After(20 * time.Second):
			t.Fatal("the waiting poll was not ended by setWebhook")
		}
		if r.status == http.StatusConflict && r.Description == "Conflict: terminated by setWebhook request" {
			return
		}
		// A poll that began only after the webhook was set is refused
		// with another conflict: it was not yet waiting. Try again.
		if r.status != http.StatusConflict || try == 5 {
			t.Fatalf("the waiting poll ended with %d %q", r.status, r.Description)
		}
		mustOK(t, call(t, b, token, "deleteWebhook", nil), nil)
	}
}
