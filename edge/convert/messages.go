package convert

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Chat messages → Gemini contents: roles, system turns, assistant tool calls and tool results.

func (c *converter) messages(msgs []Message, body *GenerateContentRequest) error {
	gemini3 := isGemini3(c.plan.Model.Upstream)
	for i := range msgs {
		msg := &msgs[i]
		field := fmt.Sprintf("messages[%d]", i)
		switch msg.Role {
		case "system", "developer":
			parts, err := c.content(msg.Content, field+".content", true)
			if err != nil {
				return err
			}
			if len(parts) == 0 {
				continue
			}
			if body.SystemInstruction == nil {
				body.SystemInstruction = &Content{}
			}
			body.SystemInstruction.Parts = append(body.SystemInstruction.Parts, parts...)
		case "user":
			parts, err := c.content(msg.Content, field+".content", false)
			if err != nil {
				return err
			}
			if len(parts) > 0 {
				body.Contents = append(body.Contents, Content{Role: "user", Parts: parts})
			}
		case "assistant":
			parts, err := c.content(msg.Content, field+".content", false)
			if err != nil {
				return err
			}
			calls := msg.ToolCalls
			if msg.FunctionCall != nil && len(calls) == 0 {
				calls = []ToolCall{{ID: msg.FunctionCall.Name, Type: "function", Function: *msg.FunctionCall}}
			}
			signed := false
			for j := range calls {
				tc := &calls[j]
				f := fmt.Sprintf("%s.tool_calls[%d]", field, j)
				if tc.Function.Name == "" {
					return fieldErr(f+".function.name", "is required")
				}
				args := json.RawMessage(`{}`)
				if a := strings.TrimSpace(tc.Function.Arguments); a != "" {
					if !json.Valid([]byte(a)) || a[0] != '{' {
						return fieldErr(f+".function.arguments", "want a JSON object encoded as a string")
					}
					args = json.RawMessage(a)
				}
				if tc.ID != "" {
					c.names[tc.ID] = tc.Function.Name
				}
				p := Part{FunctionCall: &FunctionCall{Name: tc.Function.Name, Args: args}, ThoughtSignature: DecodeToolCallID(tc.ID)}
				signed = signed || p.ThoughtSignature != ""
				parts = append(parts, p)
			}
			if gemini3 {
				// Images a Gemini 3 image model made come back through the
				// client as markdown without their signature.
				for k := range parts {
					if parts[k].InlineData != nil && parts[k].ThoughtSignature == "" {
						parts[k].ThoughtSignature = "skip_thought_signature_validator"
					}
				}
			}
			if gemini3 && !signed && len(calls) > 0 {
				// History from another model or client: Gemini 3 wants a
				// signature on the first call of a turn; this is its
				// documented escape hatch.
				for k := range parts {
					if parts[k].FunctionCall != nil {
						parts[k].ThoughtSignature = "skip_thought_signature_validator"
						break
					}
				}
			}
			if len(parts) > 0 {
				body.Contents = append(body.Contents, Content{Role: "model", Parts: parts})
			}
		case "tool", "function":
			name := msg.Name
			if msg.Role == "tool" {
				if msg.ToolCallID == "" {
					return fieldErr(field+".tool_call_id", "is required")
				}
				n, ok := c.names[msg.ToolCallID]
				if !ok {
					return fieldErr(field+".tool_call_id", "%q matches no tool call of an earlier assistant message", msg.ToolCallID)
				}
				name = n
			} else if name == "" {
				return fieldErr(field+".name", "is required")
			}
			resp, err := c.toolResult(msg.Content, field+".content")
			if err != nil {
				return err
			}
			p := Part{FunctionResponse: &FunctionResponse{Name: name, Response: resp}}
			// Parallel results answer one model turn together.
			if n := len(body.Contents); n > 0 && body.Contents[n-1].Role == "user" && isResponseTurn(body.Contents[n-1]) {
				body.Contents[n-1].Parts = append(body.Contents[n-1].Parts, p)
			} else {
				body.Contents = append(body.Contents, Content{Role: "user", Parts: []Part{p}})
			}
		case "":
			return fieldErr(field+".role", "is required")
		default:
			return fieldErr(field+".role", "unknown role %q", msg.Role)
		}
	}
	if len(body.Contents) == 0 {
		return fieldErr("messages", "hold no user or assistant content")
	}
	return nil
}

func isResponseTurn(c Content) bool {
	for _, p := range c.Parts {
		if p.FunctionResponse == nil {
			return false
		}
	}
	return len(c.Parts) > 0
}
