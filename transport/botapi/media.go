package botapi

import (
	"context"
	"io"
	"net/http"
	"path"
	"strings"

	"github.com/heraldim/herald"
)

// Files: the send methods take a file as a multipart upload (under the
// parameter's name, or "attach://<name>"), or as the file_id of a file the
// bot can already read. URLs are refused: this server does not fetch files
// from the Internet on a bot's behalf (that would let any bot make the
// server request any address, internal ones included).

// PhotoSize is the Bot API's PhotoSize.
type PhotoSize struct {
	FileID       string `json:"file_id"`
	FileUniqueID string `json:"file_unique_id"`
	Width        int    `json:"width"`
	Height       int    `json:"height"`
	FileSize     int64  `json:"file_size,omitempty"`
}

// FileObject is the Bot API's Document, Video, Audio, Voice and Animation
// in one: the fields that do not apply stay empty.
type FileObject struct {
	FileID       string `json:"file_id"`
	FileUniqueID string `json:"file_unique_id"`
	FileName     string `json:"file_name,omitempty"`
	MimeType     string `json:"mime_type,omitempty"`
	FileSize     int64  `json:"file_size,omitempty"`
	Width        int    `json:"width,omitempty"`
	Height       int    `json:"height,omitempty"`
	Duration     int    `json:"duration,omitempty"`
}

// File is the Bot API's File (getFile's result).
type File struct {
	FileID       string `json:"file_id"`
	FileUniqueID string `json:"file_unique_id"`
	FileSize     int64  `json:"file_size,omitempty"`
	FilePath     string `json:"file_path,omitempty"`
}

// uniqueID is the same for one stored file whichever bot looks at it.
func uniqueID(f herald.File) string {
	if len(f.SHA256) >= 16 {
		return "u" + f.SHA256[:16]
	}
	return "u" + f.ID
}

// attachFile puts a message's file into out, where the Bot API has it.
func attachFile(out *Message, f *herald.File) {
	fo := &FileObject{FileID: f.ID, FileUniqueID: uniqueID(*f), FileName: f.Name, MimeType: f.MIME, FileSize: f.Size}
	switch f.Kind {
	case herald.FilePhoto:
		out.Photo = []PhotoSize{{FileID: f.ID, FileUniqueID: uniqueID(*f), Width: f.Width, Height: f.Height, FileSize: f.Size}}
	case herald.FileVideo:
		fo.Width, fo.Height, fo.Duration = f.Width, f.Height, int(f.Duration.Seconds())
		out.Video = fo
	case herald.FileAudio:
		fo.Duration = int(f.Duration.Seconds())
		out.Audio = fo
	case herald.FileVoice:
		fo.Duration = int(f.Duration.Seconds())
		out.Voice = fo
	default:
		out.Document = fo
	}
}

// inputFile resolves a file parameter to a file id, storing an upload.
func (r *request) inputFile(ctx context.Context, field string) (string, error) {
	v := r.p.str(field)
	up := r.p.files[field]
	if name, ok := strings.CutPrefix(v, "attach://"); ok {
		up = r.p.files[name]
		if up == nil {
			return "", badRequest("the file attach://%s is not in the request", name)
		}
	}
	if up != nil {
		f, err := r.api.svc.BotUpload(ctx, r.caller, up.name, up.size, up.open)
		if err != nil {
			return "", err
		}
		return f.ID, nil
	}
	switch {
	case v == "":
		return "", badRequest("parameter %q is required", field)
	case strings.HasPrefix(v, "http://") || strings.HasPrefix(v, "https://"):
		return "", badRequest("wrong file identifier/HTTP URL specified: this server does not fetch files from URLs; upload the file with multipart/form-data")
	}
	if _, err := r.api.svc.FileInfo(ctx, r.caller, v); err != nil {
		if herald.IsKind(err, herald.NotFound) {
			return "", badRequest("wrong file identifier specified")
		}
		return "", err
	}
	return v, nil
}

// optionalText reads an optional caption and its formatting.
func (r *request) optionalText(name, entitiesParam string) (string, []herald.Entity, error) {
	if !r.p.has(name) {
		return "", nil, nil
	}
	return r.text(name, entitiesParam)
}

// takesFile are the methods that take an uploaded file (lower-cased).
var takesFile = map[string]bool{
	"senddocument": true, "sendphoto": true, "sendvideo": true,
	"sendaudio": true, "sendvoice": true, "sendanimation": true,
}

// sendMedia is sendDocument, sendPhoto and the rest: they differ only in
// the parameter naming the file; what the file is, the server sniffs.
func sendMedia(field string) methodFunc {
	return func(ctx context.Context, r *request) (any, error) {
		ch, _, err := r.chat(ctx, "chat_id")
		if err != nil {
			return nil, err
		}
		caption, ents, err := r.optionalText("caption", "caption_entities")
		if err != nil {
			return nil, err
		}
		buttons, _, err := r.buttons()
		if err != nil {
			return nil, err
		}
		reply, allow, err := r.replyTo()
		if err != nil {
			return nil, err
		}
		id, err := r.inputFile(ctx, field)
		if err != nil {
			return nil, err
		}
		return r.send(ctx, ch, caption, id, herald.Extras{Buttons: buttons, Entities: ents}, reply, allow)
	}
}

func editMessageCaption(ctx context.Context, r *request) (any, error) {
	return editText(ctx, r, "caption", "caption_entities")
}

// filePath is getFile's file_path: relative, as libraries expect (one
// treats an absolute path as a local file), naming the file's id.
func filePath(f herald.File) string {
	ext := strings.ToLower(path.Ext(f.Name))
	if len(ext) > 10 || strings.ContainsAny(ext, "/\\?#% ") {
		ext = ""
	}
	return string(f.Kind) + "s/" + f.ID + ext
}

func getFile(ctx context.Context, r *request) (any, error) {
	id, err := r.p.required("file_id")
	if err != nil {
		return nil, err
	}
	f, err := r.api.svc.FileInfo(ctx, r.caller, id)
	if err != nil {
		if herald.IsKind(err, herald.NotFound) {
			return nil, badRequest("wrong file_id or the file is temporarily unavailable")
		}
		return nil, err
	}
	return File{FileID: f.ID, FileUniqueID: uniqueID(f), FileSize: f.Size, FilePath: filePath(f)}, nil
}

// serveFile serves /file/bot<token>/<file_path>, with Range support.
func (a *API) serveFile(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeError(w, &apiError{code: http.StatusMethodNotAllowed, desc: "Method Not Allowed: use GET"})
		return
	}
	rest := strings.TrimPrefix(r.URL.Path, "/file/bot")
	token, fp, ok := strings.Cut(rest, "/")
	if !ok {
		writeError(w, &apiError{code: http.StatusNotFound, desc: "Not Found"})
		return
	}
	caller, _, err := a.svc.AuthenticateBot(r.Context(), token)
	if err != nil {
		writeError(w, err)
		return
	}
	base := path.Base(fp)
	id, _, _ := strings.Cut(base, ".")
	fr, err := a.svc.OpenFile(r.Context(), caller, id, false)
	if err != nil {
		if herald.IsKind(err, herald.NotFound) {
			writeError(w, &apiError{code: http.StatusNotFound, desc: "Not Found: file not found"})
			return
		}
		writeError(w, err)
		return
	}
	defer fr.Close()
	w.Header().Set("Content-Type", fr.MIME)
	http.ServeContent(w, r, "", fr.Created, io.NewSectionReader(fr, 0, fr.Size))
}
